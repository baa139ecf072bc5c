"""The embedded default runner: steps in threads of this process, shards in a thread pool.

Threads, not processes, because the heavy work (Arrow, Polars, LightGBM, NumPy) releases
the GIL, and because artifacts are passed as folders anyway.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class LocalRunner:
    """Runs independent steps in parallel threads (``max_parallel_steps`` at a time)."""

    def __init__(self, max_parallel_steps: int | None = None, max_shard_workers: int | None = None):
        cpus = os.cpu_count() or 1
        self.max_parallel_steps = max_parallel_steps or max(2, cpus)
        self.max_shard_workers = max_shard_workers or cpus

    def execute(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        if len(items) <= 1 or self.max_shard_workers <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.max_shard_workers, len(items))) as pool:
            return list(pool.map(fn, items))
