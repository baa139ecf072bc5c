"""cache reasons: what each execution's cache key was made of, and why a step ran

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cache_parts", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("miss_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_column("miss_reason")
        batch_op.drop_column("cache_parts")
