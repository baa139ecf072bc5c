"""The protocols that the layers above core implement.

Core states them so that a runner never imports SQLAlchemy and a Ray worker needs nothing
but the accumulator it was handed.
"""

from __future__ import annotations

from typing import Any, Protocol, Self, runtime_checkable

import pyarrow as pa


@runtime_checkable
class Accumulator(Protocol):
    """A mergeable summary of data: update with batches anywhere, merge the shards, read once.

    Implementations must be picklable so that shards can be computed in another process
    or on a Ray worker and merged on the driver. ``merge`` must be associative so that the
    order in which shards come back does not matter.
    """

    def update(self, batch: pa.RecordBatch | pa.Table) -> None: ...

    def merge(self, other: Self) -> Self: ...

    def result(self) -> dict[str, Any]: ...
