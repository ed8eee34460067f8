"""SQLAlchemy engines on SQLite or PostgreSQL, configured the same way for every lmcourse service
(the leaderboard, the scaling API).

SQLite gets WAL (readers never wait for the writer), foreign keys and a 30-second busy timeout.
pysqlite would start its transactions lazily, as ``BEGIN DEFERRED``, so two writers could both
read (a quota, a budget) before either writes; the engine therefore issues ``BEGIN`` itself, and
a :func:`writer` engine begins with ``BEGIN IMMEDIATE``, which takes the database's write lock
before the first read. PostgreSQL goes through psycopg 3; there, writers lock the rows they read.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

SQLITE_BUSY_TIMEOUT_S = 30
_IMMEDIATE = "lmcourse_begin_immediate"  # execution option read by the ``begin`` hook


def with_psycopg(url: str | URL) -> URL:
    """``postgresql://`` and ``postgres://`` URLs use psycopg 3 (SQLAlchemy would pick psycopg2)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL, **postgres_pool: Any) -> Engine:
    """An engine for ``url``; ``postgres_pool`` (``pool_size``, ``max_overflow``) sizes PostgreSQL's pool."""
    parsed = with_psycopg(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True, **postgres_pool)
    # An in-memory database lives in one connection (a new one would be empty), so it suits
    # single-threaded scripts only; a file is what concurrent use needs.
    in_memory = parsed.database in (None, "", ":memory:")
    engine = create_engine(parsed, poolclass=StaticPool) if in_memory else create_engine(parsed)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver stops issuing BEGIN: the hook below does
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")  # first: switching to WAL may wait
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: a crash loses at most the last commits
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def writer(engine: Engine) -> Engine:
    """The same engine, whose transactions take the write lock first (BEGIN IMMEDIATE on SQLite)."""
    return engine.execution_options(**{_IMMEDIATE: True})
