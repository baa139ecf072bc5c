"""The statuses of runs and executions.

A ``StrEnum`` so that the stored values stay the plain strings they always were and a
comparison with a string (``status == "complete"``) keeps working; a typo in a member name
fails at import instead of matching nothing.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Where a run or an execution stands."""

    #: started; nothing is final yet
    RUNNING = "running"
    #: ended and published its outputs
    COMPLETE = "complete"
    #: reused an earlier execution's outputs (a cache hit)
    CACHED = "cached"
    #: raised; nothing of it is registered
    FAILED = "failed"
    #: a gate closed (its findings may be published); the run stops there
    BLOCKED = "blocked"
    #: not run because a step it depends on failed or was blocked
    SKIPPED = "skipped"
    #: left running by a process that is gone (found at the next run on the host)
    ABANDONED = "abandoned"

    @property
    def ended(self) -> bool:
        """Whether nothing will change it any more."""
        return self is not Status.RUNNING
