"""The leaderboard's tables as SQLAlchemy 2.0 models, and the engine that opens them.

Five tables: boards, students, their tokens (only a sha256 of each token is kept), accepted
submissions and their evaluation results. A rejected submission is never written anywhere.
The schema itself is created and upgraded by the Alembic revisions in ``migrations/``; the
models here must match them (a test compares the two on SQLite and PostgreSQL).

SQLite is the default; PostgreSQL is used when the URL says so. Both are opened by
:mod:`lmcourse.grader.database`, whose writer engines take SQLite's write lock up front instead of
failing halfway when another writer got there first.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Engine,
    Float,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ..grader import database
from ..grader.errors import LmcourseError

DB_ENV = "LMCOURSE_LEADERBOARD_DB"
DEFAULT_FILE = "leaderboard.db"

# Named constraints: Alembic can then alter them, and SQLite's batch mode can rebuild tables.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC datetime on every backend (SQLite stores no zone, so one is put back on read)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("leaderboard timestamps must be timezone-aware")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime, dict[str, Any]: JSON}


class Board(Base):
    """A ranking with fixed rules (dataset, context length, limits): entries on it compare fairly."""

    __tablename__ = "boards"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    unit: Mapped[str] = mapped_column(String(64))
    rules: Mapped[dict[str, Any]]  # BoardRules as JSON
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Student(Base):
    __tablename__ = "students"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[str] = mapped_column(String(128), unique=True)  # the course's id (SUNet, email, ...)
    display_name: Mapped[str] = mapped_column(String(128))  # what the board shows
    is_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    tokens: Mapped[list[Token]] = relationship(back_populates="student")


class Token(Base):
    """A student's submission token, kept as a sha256: a copy of the database leaks no usable token."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_pk: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]

    student: Mapped[Student] = relationship(back_populates="tokens")


class Submission(Base):
    """An accepted submission. The same weights on the same board exist once (``content_sha256``)."""

    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("board_id", "content_sha256", name="uq_submissions_board_content"),
        # The daily quota counts one student's submissions to one board since midnight UTC.
        Index("ix_submissions_quota", "board_id", "student_pk", "submitted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"))
    student_pk: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    content_sha256: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]]  # the model config the weights were loaded with
    training_log: Mapped[str | None] = mapped_column(Text)  # log.jsonl as the student sent it
    has_tokenizer: Mapped[bool] = mapped_column(Boolean)  # vocab and merges came with it
    submitted_at: Mapped[dt.datetime]
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden_by: Mapped[str | None] = mapped_column(String(128))
    hidden_at: Mapped[dt.datetime | None]
    verified: Mapped[bool] = mapped_column(Boolean)
    verified_by: Mapped[str | None] = mapped_column(String(128))
    verified_at: Mapped[dt.datetime | None]
    unverified_reason: Mapped[str | None] = mapped_column(Text)  # why staff must re-run it

    board: Mapped[Board] = relationship()
    student: Mapped[Student] = relationship()
    result: Mapped[Result] = relationship(back_populates="submission")


class Result(Base):
    """What the trusted evaluator measured for one submission."""

    __tablename__ = "results"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), unique=True)
    loss: Mapped[float] = mapped_column(Float)  # mean cross-entropy per token, in nats
    perplexity: Mapped[float] = mapped_column(Float)
    bits_per_byte: Mapped[float] = mapped_column(Float, index=True)  # the ranking key
    tokens: Mapped[int] = mapped_column(BigInteger)  # validation tokens scored
    bytes: Mapped[int] = mapped_column(BigInteger)  # UTF-8 bytes of the decoded validation text
    parameters: Mapped[int] = mapped_column(BigInteger)
    seconds: Mapped[float] = mapped_column(Float)
    device: Mapped[str] = mapped_column(String(64))
    evaluated_at: Mapped[dt.datetime]

    submission: Mapped[Submission] = relationship(back_populates="result")


def database_url(url: str | None = None) -> str:
    """``url``, else ``$LMCOURSE_LEADERBOARD_DB``, else ``leaderboard.db`` in the current folder."""
    return url or os.environ.get(DB_ENV) or f"sqlite:///{Path.cwd() / DEFAULT_FILE}"


def parse_url(url: str) -> URL:
    """The URL with PostgreSQL pointed at psycopg 3, the driver lmcourse installs."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise LmcourseError(
            f"'{url}' is not a database URL; use sqlite:///PATH or postgresql://USER@HOST/DB."
        ) from None
    parsed = database.with_psycopg(parsed)
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise LmcourseError(f"the leaderboard runs on SQLite or PostgreSQL, not {parsed.get_backend_name()}.")
    return parsed


def make_engine(url: str) -> Engine:
    """An engine for ``url`` after checking it names SQLite or PostgreSQL (see :mod:`lmcourse.grader.database`)."""
    return database.make_engine(parse_url(url))
