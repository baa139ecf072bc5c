"""A component's ``prepare`` hook (infra-validation's warm server parent): called once a
step before it did work in this run, never on a run served from the cache, and a failing
warm-up never fails the run."""

from __future__ import annotations

from pathlib import Path

from lockgate import Examples, Input, Output, Pipeline, Statistics, component, run_pipeline
from lockgate.metadata.store import SqlMetadataStore

PREPARED: list[str] = []


def _prepare() -> None:
    PREPARED.append("late")


def _broken() -> None:
    PREPARED.append("broken")
    raise RuntimeError("a warm-up that fails")


@component
def source(examples: Output[Examples], *, value: str = "a") -> None:
    Path(examples.uri, "data.txt").write_text(value)


@component(prepare=_prepare)
def late(examples: Input[Examples], statistics: Output[Statistics]) -> None:
    PREPARED.append("late ran")


@component(prepare=_broken)
def fragile(examples: Input[Examples], statistics: Output[Statistics]) -> None:
    pass


def pipeline(value: str) -> Pipeline:
    first = source(value=value)
    return Pipeline(
        "prepared",
        [first, late(examples=first.outputs.examples), fragile(examples=first.outputs.examples)],
    )


def test_prepare_runs_once_after_work_and_never_on_a_cached_run(tmp_path: Path) -> None:
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    try:

        def run(value: str) -> None:
            result = run_pipeline(
                pipeline(value), store=store, artifact_root=tmp_path / "a", project_dir=tmp_path
            )
            assert result.ok, result.error

        PREPARED.clear()
        run("a")
        # prepared after `source` completed, before the steps ran; the broken one is harmless
        assert sorted(PREPARED) == ["broken", "late", "late ran"]
        assert PREPARED.index("late") < PREPARED.index("late ran")
        PREPARED.clear()
        run("a")  # everything from the cache: no warm-up
        assert PREPARED == []
        run("b")
        assert sorted(PREPARED) == ["broken", "late", "late ran"]
    finally:
        store.close()
