"""Running a pipeline: schedule ready steps in parallel, stop at the first failure or closed
gate, and record the run."""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from lockgate.core.artifact_store import artifact_store_for
from lockgate.core.artifacts import Artifact
from lockgate.core.launcher import BLOCKED, CACHED, COMPLETE, FAILED, SKIPPED, Launcher, StepResult
from lockgate.core.pipeline import Pipeline
from lockgate.core.project_code import importable
from lockgate.core.protocols import ArtifactStore, MetadataStore, Runner
from lockgate.core.runners import LocalRunner


@dataclass
class RunResult:
    run_id: int
    pipeline: str
    status: str  # complete | failed | blocked
    duration_s: float
    steps: dict[str, StepResult] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == COMPLETE

    @property
    def error(self) -> BaseException | None:
        for result in self.steps.values():
            if result.error is not None:
                return result.error
        return None

    @property
    def failed_step(self) -> str | None:
        for name, result in self.steps.items():
            if result.status in (FAILED, BLOCKED):
                return name
        return None


def run_pipeline(
    pipeline: Pipeline,
    *,
    store: MetadataStore,
    artifact_root: str | Path | ArtifactStore,
    project_dir: str | Path = ".",
    runner: Runner | None = None,
    use_cache: bool = True,
) -> RunResult:
    """Run every step once its inputs exist; independent steps run at the same time.

    After a step fails (or a gate closes) no new step starts; steps already running finish;
    the rest are reported as skipped. The project folder is importable for the whole run (a
    step body may ``import helpers``) and recorded with the run, for a runner whose workers
    must set it up themselves. ``artifact_root`` is a folder (the local store) or a URL that
    fsspec knows (``s3://bucket/prefix``: ``artifact_store_for``), or a store itself.
    """
    runner = runner or LocalRunner()
    started = time.perf_counter()
    store.mark_abandoned()
    artifacts = (
        artifact_store_for(artifact_root)
        if isinstance(artifact_root, str | Path)
        else artifact_root
    )
    artifacts.sweep(store)  # what runs killed before this one left behind
    project = Path(project_dir).resolve()
    run_id = store.start_run(pipeline.name, {"project_dir": str(project)})
    try:
        with importable(project):
            return _run(pipeline, store, artifacts, runner, run_id, project, use_cache, started)
    finally:
        artifacts.close()


def _prepare_next(
    pipeline: Pipeline, pending: list[str], ready: set[str], prepared: set[str]
) -> None:
    """Call ``prepare`` of each pending step once a step it depends on is done or running
    (``ready``): its set-up then overlaps the steps before it. Called only in a run that
    has done work, so a run served from the cache starts nothing."""
    for name in pending:
        step = pipeline.steps[name]
        if step.component.prepare is None or name in prepared:
            continue
        if step.dependencies() & ready:
            prepared.add(name)
            try:
                step.component.prepare()
            except Exception:  # noqa: BLE001 - a warm-up never fails the run
                pass


def _run(
    pipeline: Pipeline,
    store: MetadataStore,
    artifacts: ArtifactStore,
    runner: Runner,
    run_id: int,
    project_dir: str | Path,
    use_cache: bool,
    started: float,
) -> RunResult:
    launcher = Launcher(
        store=store,
        artifacts=artifacts,
        runner=runner,
        pipeline=pipeline.name,
        run_id=run_id,
        project_dir=Path(project_dir).resolve(),
        use_cache=use_cache,
    )
    results: dict[str, StepResult] = {}
    produced: dict[str, dict[str, Artifact]] = {}
    pending = list(pipeline.order)
    running: dict[Future[StepResult], str] = {}
    stopped = False
    prepared: set[str] = set()
    did_work = False
    with ThreadPoolExecutor(max_workers=runner.max_parallel_steps) as pool:
        while pending or running:
            if not stopped:
                for name in list(pending):
                    step = pipeline.steps[name]
                    if all(dep in produced for dep in step.dependencies()):
                        pending.remove(name)
                        running[pool.submit(launcher.launch, step, dict(produced))] = name
                if did_work:
                    ready = set(produced) | set(running.values())
                    _prepare_next(pipeline, pending, ready, prepared)
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                result = future.result()
                results[name] = result
                if result.status in (COMPLETE, CACHED):
                    produced[name] = result.outputs
                else:
                    stopped = True
                did_work = did_work or result.status == COMPLETE
    for name in pending:
        results[name] = StepResult(name, SKIPPED)
    statuses = {r.status for r in results.values()}
    status = BLOCKED if BLOCKED in statuses else FAILED if FAILED in statuses else COMPLETE
    ordered = {name: results[name] for name in pipeline.order}
    failed = next((r for r in ordered.values() if r.error is not None), None)
    error = f"step '{failed.step}': {failed.error}" if failed else None
    store.finish_run(run_id, status, error)
    return RunResult(run_id, pipeline.name, status, time.perf_counter() - started, ordered)
