"""Experiments remember their Slurm job (name and id), so a restarted server follows it.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("scaling_experiments", sa.Column("job_name", sa.String(64), nullable=True))
    op.add_column("scaling_experiments", sa.Column("job_id", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scaling_experiments") as batch:  # SQLite drops columns by copying the table
        batch.drop_column("job_id")
        batch.drop_column("job_name")
