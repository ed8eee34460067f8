"""Alembic's entry point: run the revisions on the connection :func:`upgrade` passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from lmcourse.leaderboard.db import Base, make_engine


def run(connection: Connection) -> None:
    # Batch mode: SQLite cannot ALTER most things, so future revisions rebuild tables instead.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    run(given)
else:  # `alembic_config(url=...)`, e.g. to autogenerate a revision
    with make_engine(context.config.get_main_option("sqlalchemy.url", "")).begin() as connection:
        run(connection)
