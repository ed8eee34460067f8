"""The first schema: students, budgets, experiments, losses, predictions.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scaling_students",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", name="uq_scaling_students_name"),
        sa.UniqueConstraint("key_hash", name="uq_scaling_students_key_hash"),
    )
    op.create_table(
        "scaling_budgets",
        sa.Column("student_id", sa.Integer(), sa.ForeignKey("scaling_students.id"), primary_key=True),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("spent", sa.Float(), nullable=False),
    )
    op.create_table(
        "scaling_experiments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("student_id", sa.Integer(), sa.ForeignKey("scaling_students.id"), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("parameters", sa.Float(), nullable=False),
        sa.Column("flops", sa.Float(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("final_loss", sa.Float(), nullable=True),
        sa.Column("refunded", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("student_id", "config_hash", name="uq_scaling_experiments_student_config"),
    )
    op.create_index("ix_scaling_experiments_student_id", "scaling_experiments", ["student_id"])
    op.create_index("ix_scaling_experiments_status", "scaling_experiments", ["status"])
    op.create_table(
        "scaling_losses",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("experiment_id", sa.Integer(), sa.ForeignKey("scaling_experiments.id"), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("loss", sa.Float(), nullable=False),
    )
    op.create_index("ix_scaling_losses_experiment_id", "scaling_losses", ["experiment_id"])
    op.create_table(
        "scaling_predictions",
        sa.Column("student_id", sa.Integer(), sa.ForeignKey("scaling_students.id"), primary_key=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("predicted_loss", sa.Float(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in ("scaling_predictions", "scaling_losses", "scaling_experiments", "scaling_budgets", "scaling_students"):
        op.drop_table(table)
