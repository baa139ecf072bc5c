"""The metadata store's tables (SQLAlchemy Core). Changes go through a migration in
``migrations/versions/``; ``SCHEMA_REVISION`` names the newest one."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

SCHEMA_REVISION = "0004"

metadata = MetaData()

# The two kinds of context: a pipeline, and each run of it (which groups its executions).
pipelines = Table(
    "pipelines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("pipeline_id", Integer, ForeignKey("pipelines.id"), nullable=False, index=True),
    Column("status", String(32), nullable=False),
    Column("properties", JSON, nullable=False, default=dict),
    Column("error", Text, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
)

executions = Table(
    "executions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False, index=True),
    Column("step_name", String(255), nullable=False, index=True),
    Column("component", String(255), nullable=False),
    Column("status", String(32), nullable=False),
    Column("cache_key", String(64), nullable=True, index=True),
    Column("code_fingerprint", String(64), nullable=True),
    Column("params", JSON, nullable=False, default=dict),
    # What the cache key was made of (code files, libraries, inputs, outside files), so that
    # the next miss can say which part changed; and that reason, for a step that ran.
    Column("cache_parts", JSON, nullable=True),
    Column("miss_reason", Text, nullable=True),
    Column("pid", Integer, nullable=True),
    Column("host", String(255), nullable=True),
    Column("error", Text, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("type_name", String(64), nullable=False, index=True),
    Column("uri", Text, nullable=False, index=True),
    Column("fingerprint", String(64), nullable=True),
    Column("properties", JSON, nullable=False, default=dict),
    # The span of examples (properties["span"]), and of what was computed from examples
    # (statistics of span N): "the newest statistics before span N" is one index lookup.
    Column("span", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_artifacts_type_span", "type_name", "span"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("execution_id", Integer, ForeignKey("executions.id"), nullable=False, index=True),
    Column("artifact_id", Integer, ForeignKey("artifacts.id"), nullable=False, index=True),
    Column("direction", String(8), nullable=False),  # "input" | "output"
    Column("name", String(255), nullable=False),
)

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("registered_models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("artifact_id", Integer, ForeignKey("artifacts.id"), nullable=False, index=True),
    Column("blessed", Boolean, nullable=False, default=False),
    Column("properties", JSON, nullable=False, default=dict),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

alias_history = Table(
    "alias_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("registered_models.id"), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=True),
    Column("reason", Text, nullable=True),
    Column("forced", Boolean, nullable=False, default=False),
    Column("set_at", DateTime(timezone=True), nullable=False),
    Index("ix_alias_history_model_alias", "model_id", "alias"),
)

# What each running model server serves, next to what the registry says (serving_status.py).
serving_status = Table(
    "serving_status",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=False),  # 0: not known (a follower outside `serve`)
    Column("pid", Integer, nullable=False),
    Column("model_name", String(255), nullable=False, index=True),
    Column("role", String(16), nullable=False),  # "primary" | "canary"
    Column("alias", String(64), nullable=False),  # the policy: an alias, "latest" or a number
    Column("wanted_version", Integer, nullable=True),
    Column("served_version", Integer, nullable=True),
    Column("failed_version", Integer, nullable=True),
    Column("failure_reason", String(16), nullable=True),  # integrity | load | warm-up
    Column("last_error", Text, nullable=True),
    Column("heartbeat_s", Float, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("host", "port", "pid", "model_name", "role", name="uq_serving_status_row"),
)
