"""A step that runs says why the cache missed, against the newest earlier execution of it:
one short reason, kept with the execution."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lockgate import Examples, Input, Output, Pipeline, Statistics, component, run_pipeline
from lockgate.core.run import RunResult
from lockgate.metadata import tables as t
from lockgate.metadata.store import SqlMetadataStore


@component(path_params=("path",))
def read(examples: Output[Examples], *, path: str, repeat: int = 1) -> None:
    Path(examples.uri, "data.txt").write_text(Path(path).read_text() * repeat)


@component
def count(examples: Input[Examples], statistics: Output[Statistics], *, label: str = "x") -> None:
    statistics.properties["chars"] = len(Path(examples.uri, "data.txt").read_text())


@component(name="count")
def count_twice(
    examples: Input[Examples], statistics: Output[Statistics], *, label: str = "x"
) -> None:
    statistics.properties["chars"] = 2 * len(Path(examples.uri, "data.txt").read_text())


@component(external_inputs=lambda params: None)
def query(examples: Output[Examples]) -> None:
    Path(examples.uri, "data.txt").write_text("from a database")


def toy(*, repeat: int = 1, label: str = "x", counter=count) -> Pipeline:  # type: ignore[no-untyped-def]
    first = read(path="input.txt", repeat=repeat)
    return Pipeline("toy", [first, counter(examples=first.outputs.examples, label=label)])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "input.txt").write_text("abc")
    return tmp_path


def run(
    pipeline: Pipeline, store: SqlMetadataStore, project: Path, *, use_cache: bool = True
) -> RunResult:
    result = run_pipeline(
        pipeline,
        store=store,
        artifact_root=project / "artifacts",
        project_dir=project,
        use_cache=use_cache,
    )
    assert result.ok, result.error
    return result


def reasons(result: RunResult) -> dict[str, str | None]:
    return {name: step.reason for name, step in result.steps.items()}


def test_the_first_run_has_no_earlier_run_and_a_hit_has_no_reason(
    store: SqlMetadataStore, project: Path
) -> None:
    first = run(toy(), store, project)
    assert reasons(first) == {"read": "no earlier run", "count": "no earlier run"}
    assert reasons(run(toy(), store, project)) == {"read": None, "count": None}
    stored = {e.step_name: e.miss_reason for e in store.run_executions(first.run_id)}
    assert stored == {"read": "no earlier run", "count": "no earlier run"}


def test_a_parameter_change_names_the_parameter_and_the_next_step_its_new_input(
    store: SqlMetadataStore, project: Path
) -> None:
    first = run(toy(), store, project)
    second = run(toy(repeat=2), store, project)
    old = first.steps["read"].outputs["examples"].id
    new = second.steps["read"].outputs["examples"].id
    assert reasons(second) == {
        "read": "parameter repeat: 1 → 2",
        "count": f"input examples is new (artifact {new}, was {old})",
    }
    third = run(toy(repeat=2, label="y"), store, project)
    assert reasons(third) == {"read": None, "count": 'parameter label: "x" → "y"'}


def test_an_outside_file_that_changed_is_named(store: SqlMetadataStore, project: Path) -> None:
    run(toy(), store, project)
    (project / "input.txt").write_text("abcd")
    assert reasons(run(toy(), store, project))["read"] == "outside file changed: input.txt"


def test_no_cache_says_so(store: SqlMetadataStore, project: Path) -> None:
    run(toy(), store, project)
    assert reasons(run(toy(), store, project, use_cache=False)) == {
        "read": "--no-cache",
        "count": "--no-cache",
    }


def test_outputs_that_are_gone_are_named(store: SqlMetadataStore, project: Path) -> None:
    first = run(toy(), store, project)
    shutil.rmtree(first.steps["count"].outputs["statistics"].uri)
    assert reasons(run(toy(), store, project)) == {
        "read": None,
        "count": "earlier outputs are gone",
    }


def test_the_step_function_that_changed_is_named(store: SqlMetadataStore, project: Path) -> None:
    run(toy(), store, project)
    assert reasons(run(toy(counter=count_twice), store, project)) == {
        "read": None,
        "count": "code changed: function count",
    }


def test_a_step_that_cannot_be_fingerprinted_says_so(
    store: SqlMetadataStore, project: Path
) -> None:
    for _ in range(2):
        result = run(Pipeline("db", [query()]), store, project)
        assert reasons(result) == {
            "query": "never cached: what it reads outside cannot be fingerprinted"
        }


def test_several_changes_give_the_first_and_a_count(store: SqlMetadataStore, project: Path) -> None:
    run(toy(), store, project)
    result = run(toy(label="y", counter=count_twice), store, project)
    assert reasons(result)["count"] == "code changed: function count (and 1 more)"


def test_an_execution_recorded_before_the_reasons_existed(
    store: SqlMetadataStore, project: Path
) -> None:
    """A store migrated from revision 0002 has executions with no key parts."""
    run(toy(), store, project)
    with store.transaction() as conn:
        conn.execute(t.executions.update().values(cache_key="0" * 64, cache_parts=None))
    assert reasons(run(toy(), store, project))["read"] == (
        "the earlier run was recorded by an older lockgate (its cache key differs)"
    )
