"""A gate that closes with ``publish_outputs=True`` keeps its findings: the outputs are
published as outputs of the blocked execution, the run stops as before, and a blocked
execution is never served from the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lockgate import (
    Anomalies,
    Examples,
    Input,
    Output,
    Pipeline,
    Statistics,
    component,
    run_pipeline,
)
from lockgate.core.run import RunResult
from lockgate.errors import GateClosedError
from lockgate.metadata.store import SqlMetadataStore

CALLS: list[str] = []


@component
def source(examples: Output[Examples]) -> None:
    Path(examples.uri, "data.txt").write_text("abc")


@component
def check(examples: Input[Examples], anomalies: Output[Anomalies], *, publish: bool = True) -> None:
    CALLS.append("check")
    found = [{"severity": "error", "split": "train", "message": "column 'x' is missing"}]
    Path(anomalies.uri, "report.html").write_text("<h1>1 anomaly</h1>")
    Path(anomalies.uri, "anomalies.json").write_text(json.dumps(found))
    anomalies.properties["anomalies"] = found
    raise GateClosedError("1 blocking anomaly", publish_outputs=publish)


@component
def after(examples: Input[Examples], statistics: Output[Statistics]) -> None:
    CALLS.append("after")


def gated(*, publish: bool = True) -> Pipeline:
    first = source()
    gate = check(examples=first.outputs.examples, publish=publish)
    return Pipeline("gated", [first, gate, after(examples=first.outputs.examples).after(gate)])


@pytest.fixture(autouse=True)
def _calls() -> None:
    CALLS.clear()


def run(pipeline: Pipeline, store: SqlMetadataStore, project: Path) -> RunResult:
    return run_pipeline(
        pipeline, store=store, artifact_root=project / "artifacts", project_dir=project
    )


def test_a_closed_gate_keeps_its_findings_and_stops_the_run(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    result = run(gated(), store, tmp_path)
    assert result.status == "blocked" and result.failed_step == "check"
    assert isinstance(result.error, GateClosedError)
    assert [s.status for s in result.steps.values()] == ["complete", "blocked", "skipped"]
    assert CALLS == ["check"]
    anomalies = result.steps["check"].outputs["anomalies"]
    assert anomalies.id is not None and anomalies.fingerprint
    assert Path(anomalies.uri, "report.html").read_text() == "<h1>1 anomaly</h1>"
    assert anomalies.properties["anomalies"][0]["message"] == "column 'x' is missing"
    execution_id = result.steps["check"].execution_id
    assert execution_id is not None
    execution = store.get_execution(execution_id)
    assert execution.status == "blocked" and "1 blocking anomaly" in str(execution.error)
    assert store.execution_artifacts(execution.id, "output") == {"anomalies": anomalies}
    producer = store.producer(anomalies.id)
    assert producer is not None and producer.id == execution.id  # lineage names the gate
    assert store.is_registered(anomalies.uri)
    assert store.get_run(result.run_id).status == "blocked"


def test_a_blocked_step_is_never_a_cache_hit(store: SqlMetadataStore, tmp_path: Path) -> None:
    first = run(gated(), store, tmp_path)
    again = run(gated(), store, tmp_path)
    assert again.steps["check"].status == "blocked" and CALLS == ["check", "check"]
    assert again.steps["check"].reason == (
        "its gate closed in the earlier run (a closed gate is never cached)"
    )
    kept = [s.steps["check"].outputs["anomalies"] for s in (first, again)]
    assert kept[0].id != kept[1].id and all(Path(a.uri).is_dir() for a in kept)


def test_a_gate_that_does_not_ask_keeps_nothing(store: SqlMetadataStore, tmp_path: Path) -> None:
    result = run(gated(publish=False), store, tmp_path)
    assert result.status == "blocked"
    assert result.steps["check"].outputs == {}
    assert store.artifacts_of_type("Anomalies") == []
    assert not any((tmp_path / "artifacts" / "gated").glob("check/**/report.html"))


def test_publish_outputs_survives_pickling() -> None:
    """A runner in another process (a Ray worker) sends the error back pickled."""
    import pickle

    error = GateClosedError("closed", publish_outputs=True, hint="look at the report")
    error.output_properties = {"anomalies": {"anomalies": []}}
    back = pickle.loads(pickle.dumps(error))
    assert back.publish_outputs and back.output_properties == error.output_properties
    assert str(back) == "closed" and back.hint == "look at the report"
    assert not GateClosedError("closed").publish_outputs
