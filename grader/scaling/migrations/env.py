"""Alembic's entry point: run the migrations on the connection :func:`lmcourse.grader.scaling.db.upgrade` passes in."""

from __future__ import annotations

from alembic import context

from lmcourse.grader.scaling.db import VERSION_TABLE, Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
