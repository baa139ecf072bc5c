"""A component's ``prepare`` hook (infra-validation's warm server parent): called once,
while the steps before it run, in a run that has done work; never on a run served from
the cache; a failing warm-up never fails the run."""

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


@component
def middle(examples: Input[Examples], statistics: Output[Statistics]) -> None:
    PREPARED.append("middle ran")


@component(prepare=_prepare)
def late(examples: Input[Examples], statistics: Input[Statistics], out: Output[Statistics]) -> None:
    PREPARED.append("late ran")


@component(prepare=_broken)
def fragile(examples: Input[Statistics], statistics: Output[Statistics]) -> None:
    pass


def pipeline(value: str) -> Pipeline:
    first = source(value=value)
    between = middle(examples=first.outputs.examples)
    last = late(examples=first.outputs.examples, statistics=between.outputs.statistics)
    return Pipeline(
        "prepared", [first, between, last, fragile(examples=between.outputs.statistics)]
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
        # prepared once `source` did work, before `late` ran; the broken one is harmless
        assert sorted(PREPARED) == ["broken", "late", "late ran", "middle ran"]
        assert PREPARED.index("late") < PREPARED.index("late ran")
        PREPARED.clear()
        run("a")  # everything from the cache: no warm-up
        assert PREPARED == []
        run("b")
        assert sorted(PREPARED) == ["broken", "late", "late ran", "middle ran"]
    finally:
        store.close()
