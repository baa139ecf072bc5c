"""One step's lifecycle: resolve inputs, look in the cache, run, publish — or record the
failure. The runner executes ``core.step_task.run_step`` wherever the step lands: it takes
working copies of the inputs on that node, stages the outputs there and publishes them to
the artifact store; only registration happens here, on the driver that holds the metadata
store. The order matters: files are published before the store row is written, so a crash
never leaves a registered half artifact; what was published but never registered is
removed here when the step or its registration failed (its URIs are known), or at the next
run when the process died (``ArtifactStore.sweep``).

A gate that closes blocks the run; one that closes with ``publish_outputs=True`` publishes
its findings first, as outputs of the blocked execution. A step that runs (a cache miss)
records one short reason why (``lockgate.core.cache``)."""

from __future__ import annotations

import contextvars
import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockgate.core.artifact_store import in_this_thread
from lockgate.core.artifacts import Artifact
from lockgate.core.cache import CacheKey, cache_key, miss_reason
from lockgate.core.component import (
    OutputRef,
    Resolver,
    Step,
    callables_in,
    canonical_params,
    code_fingerprint,
)
from lockgate.core.fingerprint import path_fingerprint
from lockgate.core.project_code import ProjectCode, library_versions
from lockgate.core.protocols import ArtifactStore, MetadataStore, Runner
from lockgate.core.publish import is_published
from lockgate.core.runners import set_current_runner
from lockgate.core.status import Status
from lockgate.core.step_task import StepOutcome, StepTask, output_uris, run_step
from lockgate.errors import DataFileError, GateClosedError

COMPLETE, CACHED, FAILED, BLOCKED, SKIPPED = (
    Status.COMPLETE,
    Status.CACHED,
    Status.FAILED,
    Status.BLOCKED,
    Status.SKIPPED,
)


@dataclass
class StepContext:
    """What an ``on_publish`` hook and a resolver get: where the step runs and its store."""

    store: MetadataStore
    pipeline: str
    run_id: int
    step: str
    params: dict[str, Any]

    def portable(self) -> StepContext:
        """This context with the store by address only: what travels to a worker process,
        which opens what it needs by URL (``tune`` its Optuna study)."""
        address: Any = StoreAddress(self.store.url)
        return StepContext(address, self.pipeline, self.run_id, self.step, self.params)


@dataclass(frozen=True)
class StoreAddress:
    """A metadata store by URL, on a worker where the driver's connection is not."""

    url: str


_current_step: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar(
    "step", default=None
)


def current_step() -> StepContext | None:
    """The step whose component is running in this thread (None outside a pipeline run):
    for a component that keeps state of its own in the project's store (``tune``'s study).
    Set around the local runner's call; a runner that ships steps elsewhere sets it there
    with :func:`run_in_step` (and a ``portable()`` context)."""
    return _current_step.get()


def run_in_step(context: StepContext | None, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` with ``current_step()`` answering ``context``."""
    token = _current_step.set(context)
    try:
        return fn(*args, **kwargs)
    finally:
        _current_step.reset(token)


@dataclass
class StepResult:
    step: str
    status: str
    duration_s: float = 0.0
    execution_id: int | None = None
    outputs: dict[str, Artifact] = field(default_factory=dict)
    error: BaseException | None = None
    reason: str | None = None  # why it ran: the cache missed because ...


class Launcher:
    """Runs steps of one pipeline run, recording everything in the metadata store."""

    def __init__(
        self,
        *,
        store: MetadataStore,
        artifacts: ArtifactStore,
        runner: Runner,
        pipeline: str,
        run_id: int,
        project_dir: Path,
        use_cache: bool = True,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.runner = runner
        self.pipeline = pipeline
        self.run_id = run_id
        self.project_dir = project_dir
        self.use_cache = use_cache
        self.project_code = ProjectCode(project_dir)

    def launch(self, step: Step, produced: dict[str, dict[str, Artifact]]) -> StepResult:
        started = time.perf_counter()
        set_current_runner(self.runner)
        execution_id: int | None = None
        task: StepTask | None = None
        params_json = canonical_params(step.params)
        inputs: dict[str, Artifact | None] = {}
        key = CacheKey(None)
        reason: str | None = None
        try:
            context = StepContext(self.store, self.pipeline, self.run_id, step.name, step.params)
            inputs = self._resolve_inputs(step, produced, context)
            params = self._absolute_paths(step)
            key = cache_key(
                component=step.component.name,
                params_json=params_json,
                code=self._code(step),
                libraries=library_versions(step.component.libraries),
                inputs=inputs,
                files=self._path_fingerprints(step, params),
            )
            if (
                self.use_cache
                and key.digest is not None
                and (cached := self.store.find_cached_outputs(key.digest)) is not None
                and all(is_published(self.artifacts, a.uri) for a in cached.values())
            ):
                execution_id = self._start(step, key, params_json, inputs, status=CACHED)
                self.store.record_cached_execution(execution_id, cached)
                return StepResult(
                    step.name, CACHED, time.perf_counter() - started, execution_id, cached
                )
            previous = (
                self.store.previous_execution(self.pipeline, step.name)
                if self.use_cache and key.digest is not None
                else None
            )
            reason = miss_reason(key, json.loads(params_json), previous, use_cache=self.use_cache)
            execution_id = self._start(step, key, params_json, inputs, reason=reason)
            task = StepTask(
                step.component,
                inputs,
                params,
                self.artifacts.address(),
                self.pipeline,
                step.name,
                str(execution_id),
            )
            token = _current_step.set(context)
            try:
                with in_this_thread(self.artifacts):  # what the task reopens if run here
                    outcome: StepOutcome = self.runner.execute(
                        run_step, task, project_dir=str(self.project_dir)
                    )
            finally:
                _current_step.reset(token)
            self._register(step, execution_id, outcome, context, params)
            status = COMPLETE if outcome.gate is None else BLOCKED
            return StepResult(
                step.name,
                status,
                time.perf_counter() - started,
                execution_id,
                outcome.outputs,
                error=outcome.gate,
                reason=reason,
            )
        except Exception as exc:
            if task is not None:
                self._discard(task, exc)
            status = BLOCKED if isinstance(exc, GateClosedError) else FAILED
            message = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
            if execution_id is None:
                execution_id = self._start(step, key, params_json, inputs, status=status)
            self.store.fail_execution(execution_id, message, status=status)
            return StepResult(
                step.name,
                status,
                time.perf_counter() - started,
                execution_id,
                error=exc,
                reason=reason,
            )

    def _register(
        self,
        step: Step,
        execution_id: int,
        outcome: StepOutcome,
        context: StepContext,
        params: dict[str, Any],
    ) -> None:
        """Register what the step published: as blocked with a closed gate's findings (the
        gate's decision stands), else complete, with the component's ``on_publish`` writes
        in the same transaction."""
        if outcome.gate is not None:
            self.store.publish_execution(
                execution_id, outcome.outputs, status=BLOCKED, error=outcome.gate_message
            )
            return
        hook = step.component.on_publish
        outputs = outcome.outputs
        self.store.publish_execution(
            execution_id,
            outputs,
            within=None
            if hook is None
            else lambda transaction: hook(context, outputs, params, transaction),
        )

    def _discard(self, task: StepTask, failure: Exception) -> None:
        """Remove what a failed step published but nobody registered, wherever it ran, and
        the staging a dead worker of this node left (its session's lock is free now). A
        cleanup that fails too is noted on ``failure``, which stays the step's error; the
        next run's sweep tries again."""
        try:
            for uri in output_uris(self.artifacts, task):
                self.artifacts.discard(uri)
            self.artifacts.sweep(self.store)
        except Exception as exc:  # noqa: BLE001 - the step's own failure is what to report
            failure.add_note(f"removing its unregistered outputs failed too: {exc!r}")

    def _start(
        self,
        step: Step,
        key: CacheKey,
        params_json: str,
        inputs: dict[str, Artifact | None],
        status: str = "running",
        reason: str | None = None,
    ) -> int:
        return self.store.start_execution(
            self.run_id,
            step=step.name,
            component=step.component.name,
            cache_key=key.digest,
            code_fingerprint=step.component.code_fingerprint,
            params=step.params,
            inputs=inputs,
            status=status,
            cache_parts=key.parts or None,
            miss_reason=reason,
        )

    def _code(self, step: Step) -> dict[str, str]:
        """The step's function and the project files it (and a function passed as a
        parameter, such as a custom trainer) reaches: {"function f": sha256, path: sha256}.
        A user's function is fingerprinted now, when its module's helpers all exist."""
        fn = step.component.fn
        own = fn.__module__.startswith("lockgate.")
        function = step.component.code_fingerprint if own else code_fingerprint(fn)
        functions = [fn, *(f for value in step.params.values() for f in callables_in(value))]
        return {
            f"function {step.component.name}": function,
            **self.project_code.fingerprint(functions),
        }

    @staticmethod
    def _resolve_inputs(
        step: Step, produced: dict[str, dict[str, Artifact]], context: StepContext
    ) -> dict[str, Artifact | None]:
        inputs: dict[str, Artifact | None] = {}
        for name, ref in step.inputs.items():
            if isinstance(ref, OutputRef):
                inputs[name] = produced[ref.step][ref.output]
            elif ref is None:
                inputs[name] = None
        for name, ref in step.inputs.items():  # resolvers may look at the other inputs
            if isinstance(ref, Resolver):
                inputs[name] = ref.resolve(context, dict(inputs))
        return inputs

    def _absolute_paths(self, step: Step) -> dict[str, Any]:
        """Params with path_params made absolute against the project folder."""
        params = dict(step.params)
        for name in step.component.path_params:
            if params.get(name) is not None:
                params[name] = str((self.project_dir / str(params[name])).resolve())
        return params

    def _path_fingerprints(
        self, step: Step, params: dict[str, Any]
    ) -> dict[str, tuple[str, str]] | None:
        """{parameter: (path, sha256)} of the outside files the step reads (the path as
        the project folder sees it); None: it cannot be cached."""
        hook = step.component.external_inputs
        paths = hook(params) if hook is not None else dict.fromkeys(step.component.path_params)
        if paths is None:
            return None
        fingerprints: dict[str, tuple[str, str]] = {}
        for name, resolved in paths.items():
            value = params.get(name) if resolved is None else resolved
            if value is None:
                continue
            path = Path(value)
            if not path.exists():
                raise DataFileError(
                    f"{step.params.get(name, value)}: no such file or folder "
                    f"(parameter '{name}' of step '{step.name}')",
                    path=str(path),
                    hint="check the path in the pipeline file; it is relative to the project folder",
                )
            shown = (
                path.relative_to(self.project_dir)
                if path.is_relative_to(self.project_dir)
                else path
            )
            fingerprints[name] = (shown.as_posix(), path_fingerprint(path))
        return fingerprints
