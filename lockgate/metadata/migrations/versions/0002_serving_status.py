"""serving status: what each model server serves, next to what the registry says

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_status",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("wanted_version", sa.Integer(), nullable=True),
        sa.Column("served_version", sa.Integer(), nullable=True),
        sa.Column("failed_version", sa.Integer(), nullable=True),
        sa.Column("failure_reason", sa.String(length=16), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("heartbeat_s", sa.Float(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "host", "port", "pid", "model_name", "role", name="uq_serving_status_row"
        ),
    )
    with op.batch_alter_table("serving_status", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_serving_status_model_name"), ["model_name"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("serving_status", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_serving_status_model_name"))

    op.drop_table("serving_status")
