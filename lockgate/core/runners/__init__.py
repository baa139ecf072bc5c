"""Runners decide where steps and data shards run; see :class:`lockgate.core.protocols.Runner`.

Components that split their work into shards ask for the current runner with
:func:`current_runner`, so the same component code runs on threads here and on Ray tasks
under a Ray runner.
"""

from __future__ import annotations

import contextvars

from lockgate.core.protocols import Runner
from lockgate.core.runners.local import LocalRunner

_current: contextvars.ContextVar[Runner | None] = contextvars.ContextVar("runner", default=None)


def current_runner() -> Runner:
    """The runner of the step being executed, or a local one outside a pipeline."""
    return _current.get() or LocalRunner()


def set_current_runner(runner: Runner) -> contextvars.Token[Runner | None]:
    return _current.set(runner)


__all__ = ["LocalRunner", "current_runner", "set_current_runner"]
