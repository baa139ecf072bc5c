"""Running pipelines: the cache, parallel steps, failures that leave earlier artifacts alone."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from lockgate import Examples, Input, Output, Pipeline, Statistics, component, run_pipeline
from lockgate.core.fingerprint import path_fingerprint
from lockgate.metadata.store import SqlMetadataStore

CALLS: list[str] = []


@component(path_params=("path",))
def read(examples: Output[Examples], *, path: str, repeat: int = 1) -> None:
    CALLS.append("read")
    Path(examples.uri, "data.txt").write_text(Path(path).read_text() * repeat)


@component
def count(examples: Input[Examples], statistics: Output[Statistics]) -> None:
    CALLS.append("count")
    text = Path(examples.uri, "data.txt").read_text()
    Path(statistics.uri, "stats.json").write_text(json.dumps({"chars": len(text)}))
    statistics.properties["chars"] = len(text)


@component
def explode(examples: Input[Examples], statistics: Output[Statistics]) -> None:
    Path(statistics.uri, "half.json").write_text("{")
    raise ValueError("this step breaks half-way")


def toy(repeat: int = 1) -> Pipeline:
    first = read(path="input.txt", repeat=repeat)
    return Pipeline("toy", [first, count(examples=first.outputs.examples)])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "input.txt").write_text("abc")
    CALLS.clear()
    return tmp_path


def run(pipeline: Pipeline, store: SqlMetadataStore, project: Path):  # type: ignore[no-untyped-def]
    return run_pipeline(
        pipeline, store=store, artifact_root=project / "artifacts", project_dir=project
    )


def test_second_run_comes_from_cache_and_a_param_change_reruns_downstream(
    store: SqlMetadataStore, project: Path
) -> None:
    first = run(toy(), store, project)
    assert first.ok and CALLS == ["read", "count"]
    second = run(toy(), store, project)
    assert [s.status for s in second.steps.values()] == ["cached", "cached"]
    assert CALLS == ["read", "count"]
    assert (
        second.steps["count"].outputs["statistics"].uri
        == first.steps["count"].outputs["statistics"].uri
    )
    third = run(toy(repeat=2), store, project)
    assert [s.status for s in third.steps.values()] == ["complete", "complete"]
    assert third.steps["count"].outputs["statistics"].properties == {"chars": 6}


def test_changing_the_input_file_invalidates_the_cache(
    store: SqlMetadataStore, project: Path
) -> None:
    run(toy(), store, project)
    (project / "input.txt").write_text("abcd")
    again = run(toy(), store, project)
    assert again.steps["read"].status == "complete"
    assert again.steps["count"].outputs["statistics"].properties == {"chars": 4}


def test_a_deleted_artifact_folder_is_not_reused(store: SqlMetadataStore, project: Path) -> None:
    import shutil

    first = run(toy(), store, project)
    shutil.rmtree(first.steps["count"].outputs["statistics"].uri)
    again = run(toy(), store, project)
    assert again.steps["read"].status == "cached"
    assert again.steps["count"].status == "complete"


def test_a_failing_step_registers_nothing_and_leaves_earlier_artifacts_intact(
    store: SqlMetadataStore, project: Path
) -> None:
    good = run(toy(), store, project)
    examples = good.steps["read"].outputs["examples"]
    before = path_fingerprint(examples.uri)
    first = read(path="input.txt")
    broken = Pipeline("toy", [first, explode(examples=first.outputs.examples)])
    result = run(broken, store, project)
    assert result.status == "failed" and result.failed_step == "explode"
    assert isinstance(result.error, ValueError)
    execution = store.get_execution(result.steps["explode"].execution_id)
    assert execution.status == "failed" and "breaks half-way" in execution.error
    assert store.execution_artifacts(execution.id, "output") == {}
    assert store.artifacts_of_type("Statistics") == [good.steps["count"].outputs["statistics"]]
    assert path_fingerprint(examples.uri) == before
    assert not any((project / "artifacts" / ".tmp").iterdir())
    assert store.get_run(result.run_id).status == "failed"


def test_a_missing_input_file_fails_the_step_with_its_path(
    store: SqlMetadataStore, project: Path
) -> None:
    first = read(path="nothere.csv")
    result = run(Pipeline("toy", [first, count(examples=first.outputs.examples)]), store, project)
    assert result.failed_step == "read"
    assert "nothere.csv: no such file" in str(result.error)
    assert result.steps["count"].status == "skipped"


def test_independent_steps_run_at_the_same_time(store: SqlMetadataStore, project: Path) -> None:
    barrier = threading.Barrier(2, timeout=10)

    @component
    def wait_for_sibling(examples: Input[Examples], statistics: Output[Statistics]) -> None:
        barrier.wait()  # only returns when both branches are inside at once

    first = read(path="input.txt")
    left = wait_for_sibling(examples=first.outputs.examples).named("left")
    right = wait_for_sibling(examples=first.outputs.examples).named("right")
    started = time.perf_counter()
    result = run(Pipeline("par", [first, left, right]), store, project)
    assert result.ok, result.error
    assert time.perf_counter() - started < 10


def test_store_records_run_lineage_edges(store: SqlMetadataStore, project: Path) -> None:
    result = run(toy(), store, project)
    stats = result.steps["count"].outputs["statistics"]
    producer = store.producer(stats.id)
    assert producer is not None and producer.step_name == "count"
    inputs = store.execution_artifacts(producer.id, "input")
    assert inputs["examples"].id == result.steps["read"].outputs["examples"].id
    runs = store.list_runs()
    assert runs[0].status == "complete" and runs[0].duration_s is not None


def test_a_change_to_a_components_code_invalidates_its_cache(
    store: SqlMetadataStore, project: Path
) -> None:
    first = read(path="input.txt")
    run(Pipeline("toy", [first, count(examples=first.outputs.examples)]), store, project)

    @component(name="count")
    def count_v2(examples: Input[Examples], statistics: Output[Statistics]) -> None:
        Path(statistics.uri, "stats.json").write_text("{}")
        statistics.properties["version"] = 2

    result = run(
        Pipeline("toy", [first, count_v2(examples=first.outputs.examples)]), store, project
    )
    assert result.steps["read"].status == "cached"
    assert result.steps["count"].status == "complete"
    assert result.steps["count"].outputs["statistics"].properties == {"version": 2}
