"""Runners decide where steps and data shards run; see :class:`lockgate.core.protocols.Runner`.

Components that split their work into shards ask for the current runner with
:func:`current_runner`, so the same component code runs on threads here and on Ray tasks
under a Ray runner.
"""

from __future__ import annotations

import contextvars

from lockgate.core.protocols import Runner
from lockgate.core.runners.local import LocalRunner
from lockgate.errors import ConfigError

_current: contextvars.ContextVar[Runner | None] = contextvars.ContextVar("runner", default=None)


def current_runner() -> Runner:
    """The runner of the step being executed, or a local one outside a pipeline."""
    return _current.get() or LocalRunner()


#: the runners ``--runner`` and ``[runner] name`` choose from
RUNNERS = ("local", "ray")


def runner_named(name: str, *, address: str | None = None) -> Runner:
    """The runner a setting names; Ray is imported only when it is chosen (and started
    only when the first step runs)."""
    if name == "local":
        if address is not None:
            raise ConfigError(
                f"a runner address ({address}) needs the Ray runner",
                hint="add --runner ray, or drop --address",
            )
        return LocalRunner()
    if name == "ray":
        from lockgate.core.runners.ray import RayRunner
        from lockgate.core.runners.ray_connect import import_ray

        import_ray()  # a missing extra is reported now, before the run starts
        return RayRunner(address)
    raise ConfigError(f"unknown runner {name!r}; runners are {list(RUNNERS)}")


def set_current_runner(runner: Runner) -> contextvars.Token[Runner | None]:
    return _current.set(runner)


__all__ = ["RUNNERS", "LocalRunner", "current_runner", "runner_named", "set_current_runner"]
