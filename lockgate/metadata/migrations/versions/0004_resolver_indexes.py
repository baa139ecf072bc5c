"""resolver indexes: the span of examples (and of what was computed from them) as a column,
and an index for every lookup a resolver, the registry or the artifact sweep makes, so that
none scans the history

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: properties["span"] -> span for the rows written before the column existed (integers only).
_BACKFILL = {
    "sqlite": (
        "UPDATE artifacts SET span = json_extract(properties, '$.span')"
        " WHERE json_type(properties, '$.span') = 'integer'"
    ),
    "postgresql": (
        "UPDATE artifacts SET span = (properties->>'span')::integer"
        " WHERE json_typeof(properties->'span') = 'number'"
        " AND (properties->>'span') ~ '^-?[0-9]+$'"
    ),
}


#: Then each output of an execution that took examples gets their span (statistics of span N).
_INHERIT = """
UPDATE artifacts SET span = (
    SELECT examples.span FROM events AS gave
    JOIN events AS took ON took.execution_id = gave.execution_id
        AND took.direction = 'input' AND took.name = 'examples'
    JOIN artifacts AS examples ON examples.id = took.artifact_id
    WHERE gave.artifact_id = artifacts.id AND gave.direction = 'output'
        AND examples.span IS NOT NULL
    ORDER BY gave.execution_id
    LIMIT 1
)
WHERE span IS NULL
"""


def upgrade() -> None:
    with op.batch_alter_table("artifacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("span", sa.Integer(), nullable=True))
        batch_op.create_index("ix_artifacts_type_span", ["type_name", "span"], unique=False)
        batch_op.create_index(batch_op.f("ix_artifacts_uri"), ["uri"], unique=False)
    op.execute(_BACKFILL[op.get_bind().dialect.name])
    op.execute(_INHERIT)
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_executions_step_name"), ["step_name"], unique=False)
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_versions_artifact_id"), ["artifact_id"], unique=False
        )
    with op.batch_alter_table("model_aliases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_aliases_version_id"), ["version_id"], unique=False
        )
    with op.batch_alter_table("alias_history", schema=None) as batch_op:
        batch_op.create_index("ix_alias_history_model_alias", ["model_id", "alias"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alias_history", schema=None) as batch_op:
        batch_op.drop_index("ix_alias_history_model_alias")
    with op.batch_alter_table("model_aliases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_aliases_version_id"))
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_versions_artifact_id"))
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_executions_step_name"))
    with op.batch_alter_table("artifacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_artifacts_uri"))
        batch_op.drop_index("ix_artifacts_type_span")
        batch_op.drop_column("span")
