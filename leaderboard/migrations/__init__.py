"""The leaderboard schema's history: Alembic revisions, configured in code (no alembic.ini).

:func:`upgrade` brings a database to the newest revision; :meth:`Store.open` calls it, so a
course never runs a migration by hand. Concurrent openers (web workers, CLI calls) take turns:
PostgreSQL through an advisory lock, SQLite through its write lock (``BEGIN IMMEDIATE``).

A schema change is a new file in ``versions/``; with the models in ``db.py`` edited first::

    from alembic import command
    from lmcourse.leaderboard.migrations import alembic_config
    command.revision(alembic_config(url="sqlite:///dev.db"), "add a column", autogenerate=True,
                     rev_id="0002")

Then check the generated file by hand: autogenerate misses renames and data changes.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from ...grader.database import writer
from ...grader.errors import LmcourseError

SCRIPTS = Path(__file__).resolve().parent
# Key of the PostgreSQL advisory lock that serializes upgrades (any constant unique to this app).
UPGRADE_LOCK = 0x4C4D4342  # "LMCB"


def alembic_config(connection: Connection | None = None, *, url: str | None = None) -> Config:
    """An Alembic config for ``connection`` (or for ``url``, where ``env.py`` opens its own)."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    config.attributes["connection"] = connection
    return config


def head() -> str:
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None, "the leaderboard has no migrations"
    return revision


def current(connection: Connection) -> str | None:
    """The revision the database is at, or None for a database never migrated."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database at ``engine`` to ``revision``, in one transaction, one opener at a time."""
    with writer(engine).begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({UPGRADE_LOCK})")
        at = current(connection)
        known = {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
        if at is not None and at not in known:
            raise LmcourseError(
                f"the leaderboard database is at schema revision {at}, newer than this lmcourse knows; "
                "upgrade lmcourse."
            )
        command.upgrade(alembic_config(connection), revision)
