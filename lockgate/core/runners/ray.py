"""The Ray runner: each step's component runs as a Ray task, each data shard as another.

The launcher, the cache and the metadata store stay on the driver: a step's task
(``core.step_task.run_step``) reopens the artifact store by address on its node, takes
working copies of its inputs there, runs the component and publishes its outputs, and
returns plain data; the driver registers them. A worker that dies mid-step returns
nothing, so nothing is registered, and the driver discards what it may have published; a
retry stages afresh, from empty outputs. The driver's thread pool still runs independent
steps at the same time; each of its threads waits on its task's ``ray.get``.

Ray is an optional extra, imported only when a RayRunner starts. Started here, Ray is
bound to 127.0.0.1 and has no dashboard; ``address`` joins a running cluster instead
(``"127.0.0.1:6379"`` as ``ray start --head`` prints it, ``"ray://host:10001"`` through
Ray Client). On a cluster whose nodes do not share the project folder, pass
``runtime_env={"working_dir": ...}``; on one machine, or with a shared mount, the task
puts the recorded project folder on ``sys.path`` before it unpickles the step.
"""

from __future__ import annotations

import os
import pickle
import sys
import traceback
from collections.abc import Callable
from typing import Any

from lockgate.core.runners import set_current_runner
from lockgate.core.runners.ray_connect import (
    CONNECT_TIMEOUT_S,
    LOOPBACK,
    check_loopback,
    check_reachable,
    import_ray,
    join_cluster,
    join_timeout,
    keep_workers,
    require_client,
)
from lockgate.errors import StepFailedError

_RESERVED = ("num_cpus", "num_gpus", "memory")


class RayRunner:
    """Runs steps and shards as Ray tasks; see the module docstring.

    ``num_cpus`` limits a Ray started here (default: every core) and ``resources`` gives
    its node custom resources; ``shard_cpus`` (and ``shard_resources``, custom resources)
    is what each data shard asks for. A runner
    that finds Ray already initialised in this process uses that instance and leaves it
    running.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        resources: dict[str, float] | None = None,
        shard_cpus: float = 1,
        shard_resources: dict[str, float] | None = None,
        max_parallel_steps: int = 16,
        runtime_env: dict[str, Any] | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        join_timeout_s: float | None = None,
    ) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.resources = resources
        self.shard_cpus = shard_cpus
        self.shard_resources = shard_resources
        self.max_parallel_steps = max_parallel_steps
        self.runtime_env = runtime_env
        self.connect_timeout_s = connect_timeout_s
        self.join_timeout_s = join_timeout_s
        self._ray: Any = None
        self._owns = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> RayRunner:
        """Start or join Ray (idempotent)."""
        if self._ray is not None:
            return self
        address = self.address
        client = address is not None and address.startswith("ray://")
        loopback = address is None or address.removeprefix("ray://").startswith(LOOPBACK)
        ray = import_ray(single_host=loopback and not client)
        if address is not None and address != "auto":  # "auto": the one ray start began here
            check_reachable(address, self.connect_timeout_s)
        if not ray.is_initialized():
            if address is not None:
                if client:
                    require_client()
                join_cluster(
                    ray,
                    address,
                    self.join_timeout_s or join_timeout(address),
                    runtime_env=self.runtime_env,
                    configure_logging=False,
                    # a driver on a node of a cluster bound to 127.0.0.1 must say so
                    **({"_node_ip_address": "127.0.0.1"} if loopback and not client else {}),
                )
            else:
                ray.init(
                    address="local",
                    num_cpus=self.num_cpus,
                    resources=self.resources,
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    runtime_env=self.runtime_env,
                    configure_logging=False,
                    _system_config=keep_workers(self.num_cpus or os.cpu_count() or 1),
                )
                check_loopback(ray)
            self._owns = True
        self._ray = ray
        return self

    def shutdown(self) -> None:
        """Stop the Ray this runner started (a joined or borrowed one keeps running)."""
        if self._ray is not None and self._owns:
            self._ray.shutdown()
        self._ray, self._owns = None, False

    def __enter__(self) -> RayRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- the Runner protocol ---------------------------------------------------------------

    def execute(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` (a step) as a Ray task with the component's declared
        resources and retries; the step context goes with it, for ``current_step()``."""
        from ray import cloudpickle

        from lockgate.core.launcher import current_step
        from lockgate.core.step_task import StepTask

        ray = self.start()._ray
        comp = next((a.component for a in args if isinstance(a, StepTask)), None)
        context = current_step()
        step = context.step if context is not None else getattr(comp, "name", "step")
        project_dir = kwargs.get("project_dir")
        _pickle_pipeline_by_value()
        payload = cloudpickle.dumps((fn, args, kwargs))
        portable = cloudpickle.dumps(context.portable() if context is not None else None)
        options = _task_options(comp.resources if comp else {}, comp.retries if comp else 0)
        task = _remote(ray, _run_step).options(name=f"lockgate:{step}", **options)
        ref = task.remote(payload, portable, project_dir)
        return _outcome(ray, ref, step, retries=options["max_retries"])

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        """``fn`` over ``items`` as one Ray task each (``shard_cpus`` CPUs), results in
        ``items`` order for the caller to merge.

        The shards run on the caller's node: a step's shards read its inputs' working
        copies and write into its output folders, which are local to the node the step
        runs on (with an fsspec store, other nodes have neither). A cluster spreads the
        steps; a step's shards share its node's CPUs."""
        from ray import cloudpickle
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray = self.start()._ray
        if not items:
            return []
        _pickle_pipeline_by_value()
        here = NodeAffinitySchedulingStrategy(
            node_id=ray.get_runtime_context().get_node_id(), soft=False
        )
        shard = _remote(ray, _run_shard).options(
            num_cpus=self.shard_cpus,
            resources=self.shard_resources or {},
            scheduling_strategy=here,
        )
        fn_ref = ray.put(cloudpickle.dumps(fn))
        refs = [shard.remote(fn_ref, cloudpickle.dumps(item)) for item in items]
        results = []
        for ref in refs:
            results.append(_outcome(ray, ref, "a data shard", retries=0))
        return results

    @classmethod
    def _inside(cls) -> RayRunner:
        """The runner a task sees as ``current_runner()``: shards from a step on a worker
        become Ray tasks too."""
        runner = cls()
        runner._ray = import_ray()
        return runner


_remotes: dict[Callable[..., Any], Any] = {}


def _remote(ray: Any, fn: Callable[..., Any]) -> Any:
    """One Ray remote function per task body, made once per process."""
    if fn not in _remotes:
        _remotes[fn] = ray.remote(fn)
    return _remotes[fn]


def _task_options(resources: dict[str, float], retries: int) -> dict[str, Any]:
    options: dict[str, Any] = {
        "num_cpus": resources.get("num_cpus", 1),
        "max_retries": retries,
        "retry_exceptions": False,  # the step's own errors are its answer, not bad luck
    }
    for key in ("num_gpus", "memory"):
        if key in resources:
            options[key] = resources[key]
    custom = {k: v for k, v in resources.items() if k not in _RESERVED}
    if custom:
        options["resources"] = custom
    return options


def _pickle_pipeline_by_value() -> None:
    """A pipeline file is imported under a name no worker can import: ship its code."""
    from ray import cloudpickle

    for name, module in list(sys.modules.items()):
        if name.startswith("lockgate_user_pipeline_"):
            try:
                cloudpickle.register_pickle_by_value(module)
            except ValueError:
                pass


def _outcome(ray: Any, ref: Any, step: str, *, retries: int) -> Any:
    """The task's result, its exception re-raised here, or a StepFailedError when the
    worker itself was lost."""
    from ray import cloudpickle

    try:
        status, value = cloudpickle.loads(ray.get(ref))
    except ray.exceptions.RayTaskError as exc:  # the task body could not even start
        raise StepFailedError(
            f"step '{step}' could not start on its Ray worker: "
            f"{str(exc.cause) if exc.cause is not None else exc}",
            step=step,
            hint="every node needs lockgate and the project's libraries at the driver's "
            "versions (or runtime_env with pip/py_modules)",
        ) from exc
    except ray.exceptions.RayError as exc:
        tries = f" after {retries + 1} attempts" if retries else ""
        raise StepFailedError(
            f"step '{step}': its Ray worker was lost{tries} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})",
            step=step,
            hint="the worker process or its node died (killed, out of memory); rerun, or "
            "give the component retries=N",
        ) from exc
    if status == "ok":
        return value
    error, name, message, worker_traceback = value
    if error is None:
        error = StepFailedError(f"step '{step}': {name}: {message}", step=step)
    error.add_note(f"raised on a Ray worker:\n{worker_traceback}")
    raise error


def _portable_error(exc: BaseException) -> tuple[Any, str, str, str]:
    """The exception as it can travel back (None when it does not survive pickling)."""
    from ray import cloudpickle

    try:
        payload: Any = pickle.loads(cloudpickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any exception's own pickling may fail
        payload = None
    return payload, type(exc).__name__, str(exc), traceback.format_exc()


def _run_step(payload: bytes, context: bytes, project_dir: str | None) -> bytes:
    """The task body of a step: project importable, step context and runner set, call.
    A retry's ``run_step`` stages new, empty outputs of its own."""
    from ray import cloudpickle

    from lockgate.core.launcher import run_in_step

    if project_dir is not None:
        from lockgate.core.project_code import make_importable

        make_importable(project_dir)
    set_current_runner(RayRunner._inside())
    try:
        fn, args, kwargs = cloudpickle.loads(payload)
        return _answer("ok", run_in_step(cloudpickle.loads(context), fn, *args, **kwargs))
    except Exception as exc:  # noqa: BLE001 - sent back to the driver, raised there
        return _answer("error", _portable_error(exc))


def _run_shard(fn: bytes, item: bytes) -> bytes:
    """The task body of a data shard."""
    from ray import cloudpickle

    try:
        return _answer("ok", cloudpickle.loads(fn)(cloudpickle.loads(item)))
    except Exception as exc:  # noqa: BLE001 - sent back to the driver, raised there
        return _answer("error", _portable_error(exc))


def _answer(status: str, value: Any) -> bytes:
    """Pickled here, so that the driver gets writable arrays (Ray hands NumPy arrays back
    read-only from its object store, and accumulators merge in place)."""
    from ray import cloudpickle

    return cloudpickle.dumps((status, value))
