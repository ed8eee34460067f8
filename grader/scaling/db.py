"""Storage of the training API: students and their keys, budgets, experiments, losses, predictions.

SQLAlchemy 2 models on SQLite by default (a file) or PostgreSQL by URL. The schema is created
and upgraded by the Alembic migrations in ``migrations/`` (:func:`upgrade`), configured in code
so no ``alembic.ini`` is needed; they keep their own version table, so the scaling API may share
a database with the leaderboard.

Write transactions must lock what they read, or two concurrent submissions could both see the
same remaining budget. On PostgreSQL the service reads the budget row ``FOR UPDATE``. SQLite has
no row locks: a :func:`writer` engine (:mod:`lmcourse.grader.database`) begins with
``BEGIN IMMEDIATE``, which takes the database's write lock before the first read.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .. import database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "scaling_alembic_version"

STATUSES = ("queued", "running", "completed", "failed")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Student(Base):
    """A person with an API key: a student, or an instructor who sees everyone."""

    __tablename__ = "scaling_students"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="student")  # "student" or "instructor"
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the API key
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    budget: Mapped[Budget] = relationship(back_populates="student", uselist=False)


class Budget(Base):
    """What a student may spend, in ``unit`` ("flops" or "gpu_seconds"), and what they have spent."""

    __tablename__ = "scaling_budgets"

    student_id: Mapped[int] = mapped_column(ForeignKey("scaling_students.id"), primary_key=True)
    unit: Mapped[str] = mapped_column(String(16))
    total: Mapped[float] = mapped_column(Float)
    spent: Mapped[float] = mapped_column(Float, default=0.0)

    student: Mapped[Student] = relationship(back_populates="budget")


class Experiment(Base):
    """One training run a student asked for; one per (student, config hash)."""

    __tablename__ = "scaling_experiments"
    __table_args__ = (UniqueConstraint("student_id", "config_hash", name="uq_scaling_experiments_student_config"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("scaling_students.id"), index=True)
    config_hash: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    parameters: Mapped[float] = mapped_column(Float)
    flops: Mapped[float] = mapped_column(Float)
    cost: Mapped[float] = mapped_column(Float)  # charged, in the budget's unit
    status: Mapped[str] = mapped_column(String(16), index=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, default=None)
    final_loss: Mapped[float | None] = mapped_column(Float, default=None)
    refunded: Mapped[bool] = mapped_column(Boolean, default=False)  # failed through no fault of the student
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # The batch job training it (real backend on Slurm): the name is chosen and stored before
    # ``sbatch``, the id right after, so a restarted server follows the job instead of starting another.
    job_name: Mapped[str | None] = mapped_column(String(64), default=None)
    job_id: Mapped[str | None] = mapped_column(String(32), default=None)

    losses: Mapped[list[Loss]] = relationship(
        order_by="Loss.tokens", cascade="all, delete-orphan", back_populates="experiment"
    )


class Loss(Base):
    """A validation loss of an experiment after ``tokens`` training tokens."""

    __tablename__ = "scaling_losses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("scaling_experiments.id"), index=True)
    tokens: Mapped[float] = mapped_column(Float)
    loss: Mapped[float] = mapped_column(Float)

    experiment: Mapped[Experiment] = relationship(back_populates="losses")


class Prediction(Base):
    """A student's final prediction; recording another replaces it (last write wins)."""

    __tablename__ = "scaling_predictions"

    student_id: Mapped[int] = mapped_column(ForeignKey("scaling_students.id"), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    predicted_loss: Mapped[float] = mapped_column(Float)
    revision: Mapped[int] = mapped_column(Integer, default=1)  # how many times it was recorded
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (:mod:`lmcourse.grader.database`), with a pool for a busy server on PostgreSQL."""
    return database.make_engine(url, pool_size=10, max_overflow=20)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision`` (default: the newest migration)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("version_table", VERSION_TABLE)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
