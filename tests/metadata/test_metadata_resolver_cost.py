"""The resolvers' cost does not grow with the store's history: the SQL statements a resolver
(and a registry or lineage lookup) issues are counted (SQLAlchemy's ``before_cursor_execute``) with 50 and with 5,000 of each
kind of artifact stored, on SQLite and PostgreSQL, and must be the same. Also: the answers
are right, and migration 0004 fills the new ``span`` column of rows written before it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from support import start_plain_execution

from lockgate import Examples, Model, PushedModel, Statistics
from lockgate.core.artifacts import Artifact
from lockgate.metadata import tables as t
from lockgate.metadata.lineage import artifact_lineage
from lockgate.metadata.registry import PRODUCTION, Registry
from lockgate.metadata.resolvers import (
    latest_inference_log,
    previous_span_statistics,
    production_baseline,
    production_model,
)
from lockgate.metadata.store import SqlMetadataStore, now

SMALL, LARGE = 50, 5_000
TRAIN_PARAMS = {"trainer": "lightgbm", "params": {"n_estimators": 10}}


@contextmanager
def counted() -> Iterator[list[str]]:
    """The SQL statements every engine issues inside the block."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)


def _ids(conn: sa.Connection, column: sa.Column[Any], keys: list[str]) -> dict[str, int]:
    table = column.table
    rows = conn.execute(sa.select(table.c.id, column).where(column.in_(keys)))
    return {row[1]: row[0] for row in rows}


def store_history(store: SqlMetadataStore, n: int) -> None:
    """``n`` spans of examples with their statistics (each made by a complete execution),
    ``n`` request logs of model 'm' (every other one shadow traffic) and ``n`` versions of
    model 'm' whose production alias moved ``n`` times: written in bulk, as years of runs
    would have left them."""
    run_id = store.start_run("history")
    stamp = now()
    with store.transaction() as conn:
        conn.execute(
            t.artifacts.insert(),
            [
                {
                    "type_name": type_name,
                    "uri": f"/history/{type_name}/{i}",
                    "fingerprint": f"{type_name}{i}",
                    "properties": properties,
                    "span": span,
                    "created_at": stamp,
                }
                for i in range(n)
                for type_name, properties, span in (
                    ("Examples", {"span": i}, i),
                    ("Statistics", {}, i),  # the span of its examples (publish_execution)
                    ("InferenceLog", {"model_name": "m", "shadow": i % 2 == 1}, None),
                    ("PushedModel", {"model_fingerprint": f"old{i}"}, None),
                )
            ],
        )
        uris = [f"/history/{kind}/{i}" for i in range(n) for kind in ("Examples", "Statistics")]
        artifact_ids = _ids(conn, t.artifacts.c.uri, uris)
        conn.execute(
            t.executions.insert(),
            [
                {
                    "run_id": run_id,
                    "step_name": "statistics",
                    "component": "compute_statistics",
                    "status": "complete",
                    "cache_key": f"history{i}",
                    "params": {},
                    "started_at": stamp,
                    "finished_at": stamp,
                }
                for i in range(n)
            ],
        )
        executions = _ids(conn, t.executions.c.cache_key, [f"history{i}" for i in range(n)])
        conn.execute(
            t.events.insert(),
            [
                {
                    "execution_id": executions[f"history{i}"],
                    "artifact_id": artifact_ids[f"/history/{kind}/{i}"],
                    "direction": direction,
                    "name": name,
                }
                for i in range(n)
                for kind, direction, name in (
                    ("Examples", "input", "examples"),
                    ("Statistics", "output", "statistics"),
                )
            ],
        )
        conn.execute(t.registered_models.insert().values(name="m", created_at=stamp))
        model_id = conn.execute(sa.select(t.registered_models.c.id)).scalar_one()
        pushed = _ids(conn, t.artifacts.c.uri, [f"/history/PushedModel/{i}" for i in range(n)])
        conn.execute(
            t.model_versions.insert(),
            [
                {
                    "model_id": model_id,
                    "version": i + 1,
                    "artifact_id": pushed[f"/history/PushedModel/{i}"],
                    "blessed": True,
                    "properties": {"model_fingerprint": f"old{i}"},
                    "created_at": stamp,
                }
                for i in range(n)
            ],
        )
        versions = conn.execute(
            sa.select(t.model_versions.c.id).order_by(t.model_versions.c.version)
        ).scalars()
        conn.execute(
            t.alias_history.insert(),
            [
                {"model_id": model_id, "alias": PRODUCTION, "version_id": v, "set_at": stamp}
                for v in versions
            ],
        )
    store.finish_run(run_id, "complete")


def publish(
    store: SqlMetadataStore,
    step: str,
    inputs: dict[str, Artifact | None],
    outputs: dict[str, Artifact],
    params: dict[str, Any] | None = None,
) -> None:
    """One execution that takes ``inputs`` and publishes ``outputs``, as the launcher does."""
    run_id, execution = start_plain_execution(store, step, params=params, inputs=inputs)
    store.publish_execution(execution, outputs)
    store.finish_run(run_id, "complete")


def newest_work(store: SqlMetadataStore, tmp_path: Path) -> dict[str, Artifact]:
    """What the pipeline made last: the examples of the newest spans with their statistics,
    and a model trained on them, pushed and in production."""
    made: dict[str, Artifact] = {}
    for span in (1_000_001, 1_000_002):
        examples = Examples(uri=f"/new/examples/{span}", properties={"span": span})
        publish(store, "ingest", {}, {"examples": examples})
        statistics = Statistics(uri=f"/new/statistics/{span}", properties={})
        publish(store, "statistics", {"examples": examples}, {"statistics": statistics})
        made[f"statistics{span}"] = statistics
    made["examples"] = examples
    model = Model(uri="/new/model", properties={}, fingerprint="new")
    publish(store, "train", {"examples": examples}, {"model": model}, TRAIN_PARAMS)
    (tmp_path / "pushed").mkdir(parents=True, exist_ok=True)
    pushed = PushedModel(uri=str(tmp_path / "pushed"), properties={"model_fingerprint": "new"})
    publish(store, "push", {"model": model}, {"pushed_model": pushed})
    registry = Registry(store)
    registry.register(
        "m", pushed, blessed=True, properties={"model_fingerprint": "new"}, alias=PRODUCTION
    )
    made["model"], made["pushed"] = model, pushed
    return made


def resolver_calls(
    store: SqlMetadataStore, made: dict[str, Artifact]
) -> dict[str, Callable[[], Artifact | None]]:
    def call(resolver: Any, inputs: dict[str, Artifact | None], params: Any = None) -> Any:
        context = SimpleNamespace(store=store, params=params or {})
        return lambda: resolver.resolve(context, inputs)

    return {
        "previous_span_statistics": call(
            previous_span_statistics(), {"statistics": made["statistics1000002"]}
        ),
        "latest_inference_log": call(latest_inference_log("m"), {}),
        "production_model": call(
            production_model("m"), {"examples": made["examples"]}, TRAIN_PARAMS
        ),
        "production_baseline": call(production_baseline("m"), {"model": made["model"]}),
        # and what the CLI and a UI ask of the registry and of lineage
        "registry.get": lambda: Registry(store).get("m").artifact,
        "registry.versions": lambda: Registry(store).versions("m")[-1].artifact,
        "lineage": lambda: artifact_lineage(store, made["pushed"]).artifact,
    }


def statements_per_resolver(store_url: str, tmp_path: Path, n: int) -> dict[str, int]:
    store = SqlMetadataStore(store_url)
    try:
        store_history(store, n)
        made = newest_work(store, tmp_path)
        counts: dict[str, int] = {}
        for name, call in resolver_calls(store, made).items():
            call()  # the connection pool is warm: only the resolver's own queries count
            with counted() as statements:
                call()
            counts[name] = len(statements)
        return counts
    finally:
        store.close()


def test_resolvers_issue_as_many_statements_with_5000_artifacts_as_with_50(
    store_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    small = statements_per_resolver(store_url, tmp_path / "small", SMALL)
    second_url = _fresh(store_url, tmp_path, request)
    large = statements_per_resolver(second_url, tmp_path / "large", LARGE)
    print(f"\nstatements per resolver, {SMALL} vs {LARGE} artifacts stored: {small} {large}")
    assert small == large
    # the span lookup is one query (a read transaction's BEGIN aside, on SQLite)
    assert large["previous_span_statistics"] <= 2


def _fresh(store_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A second, empty store on the same backend."""
    if store_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'large.db'}"
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    return store_url


def test_resolvers_answer_from_the_newest_history(store: SqlMetadataStore, tmp_path: Path) -> None:
    store_history(store, SMALL)
    made = newest_work(store, tmp_path)
    calls = resolver_calls(store, made)
    # span 1,000,002's statistics are compared with the newest span before it
    assert calls["previous_span_statistics"]() == made["statistics1000001"]
    first = previous_span_statistics().resolve(
        SimpleNamespace(store=store), {"statistics": _statistics_of_span(store, 0)}
    )
    assert first is None  # the first span has nothing before it
    log = calls["latest_inference_log"]()
    assert log is not None and log.uri == f"/history/InferenceLog/{SMALL - 2}"  # not shadow
    shadow = latest_inference_log("m", include_shadow=True).resolve(
        SimpleNamespace(store=store), {}
    )
    assert shadow is not None and shadow.uri == f"/history/InferenceLog/{SMALL - 1}"
    # production holds what this training would make again: it warm-starts from its base
    assert calls["production_model"]() is None
    # the candidate is production itself: the baseline is the production version before it
    baseline = calls["production_baseline"]()
    assert baseline is not None and baseline.uri == f"/history/PushedModel/{SMALL - 1}"


def _statistics_of_span(store: SqlMetadataStore, span: int) -> Artifact:
    return next(
        a for a in store.artifacts_of_type("Statistics") if a.uri == f"/history/Statistics/{span}"
    )


def test_a_store_at_revision_0003_gets_the_span_column_filled_and_inherited(store_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    engine = sa.create_engine(store_url)
    config = Config()
    config.set_main_option("script_location", str(Path(t.__file__).parent / "migrations"))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0003")
    with engine.begin() as conn:
        for span, properties in ((7, {"span": 7}), (None, {"span": "x"}), (None, {})):
            conn.execute(
                sa.text(
                    "INSERT INTO artifacts (type_name, uri, properties, created_at)"
                    " VALUES ('Examples', :uri, :properties, :t)"
                ),
                {"uri": f"/e/{span}{properties}", "properties": json.dumps(properties), "t": now()},
            )
        # statistics computed on the span-7 examples (artifact 1) by execution 1
        conn.execute(
            sa.text(
                "INSERT INTO artifacts (type_name, uri, properties, created_at)"
                " VALUES ('Statistics', '/s', '{}', :t)"
            ),
            {"t": now()},
        )
        conn.execute(
            sa.text("INSERT INTO pipelines (name, created_at) VALUES ('p', :t)"), {"t": now()}
        )
        conn.execute(
            sa.text(
                "INSERT INTO runs (pipeline_id, status, properties, started_at)"
                " VALUES (1, 'complete', '{}', :t)"
            ),
            {"t": now()},
        )
        conn.execute(
            sa.text(
                "INSERT INTO executions (run_id, step_name, component, status, params, started_at)"
                " VALUES (1, 'statistics', 'compute_statistics', 'complete', '{}', :t)"
            ),
            {"t": now()},
        )
        conn.execute(
            sa.text(
                "INSERT INTO events (execution_id, artifact_id, direction, name) VALUES"
                " (1, 1, 'input', 'examples'), (1, 4, 'output', 'statistics')"
            )
        )
    engine.dispose()
    store = SqlMetadataStore(store_url)  # migrates to the newest revision
    try:
        with store.reading() as conn:
            spans = conn.execute(sa.select(t.artifacts.c.span).order_by(t.artifacts.c.id))
            assert list(spans.scalars()) == [7, None, None, 7]
    finally:
        store.close()
