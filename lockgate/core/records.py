"""What the metadata store gives back about runs and executions: plain, typed records that
the launcher, the CLI and a UI read without knowing which database holds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lockgate.core.status import Status


@dataclass
class RunRecord:
    id: int
    pipeline: str
    status: Status
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass
class ExecutionRecord:
    """One step of one run. ``params`` is the step's parameters as stored: canonical JSON
    read back into a dict (a callable stands for its code's fingerprint)."""

    id: int
    run_id: int
    step_name: str
    component: str
    status: Status
    cache_key: str | None
    params: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    cache_parts: dict[str, Any] | None = None
    miss_reason: str | None = None

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()
