"""What each spawned process of tests/metadata/test_metadata_concurrency.py runs.

A module of its own at the top of tests/ (on sys.path through pytest's ``pythonpath``,
which a spawned child inherits): a child re-imports its target by module name, and a test
module's importlib name (``tests.metadata...``) is not importable there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support import start_plain_execution

from lockgate import PushedModel
from lockgate.core.fingerprint import path_fingerprint
from lockgate.errors import AliasConflictError
from lockgate.metadata.registry import PRODUCTION, Registry
from lockgate.metadata.store import SqlMetadataStore


def push_model(url: str, root: str, index: int, barrier: Any, results: Any) -> None:
    """What a push step does: write a PushedModel folder, fingerprint it, publish it and
    register its version with ``production`` in one transaction."""
    store = SqlMetadataStore(url)
    try:
        folder = Path(root) / f"pushed-{index}"
        folder.mkdir(parents=True)
        (folder / "model.txt").write_text(f"model {index}\n")
        pushed = PushedModel(uri=str(folder), properties={"model_fingerprint": f"m{index}"})
        pushed.fingerprint = path_fingerprint(folder)
        run_id, execution = start_plain_execution(store, "push", params={"index": index})
        registry = Registry(store)
        numbers: list[int] = []
        barrier.wait()
        store.publish_execution(
            execution,
            {"pushed_model": pushed},
            within=lambda conn: numbers.append(
                registry.register_within(
                    conn, "m", pushed, blessed=True, alias=PRODUCTION, reason=f"push {index}"
                )
            ),
        )
        store.finish_run(run_id, "complete")
        results.put((index, numbers[0]))
    finally:
        store.close()


def promote(url: str, version: int, expected: int, barrier: Any, results: Any) -> None:
    """A person promoting ``version``, having seen production on ``expected``."""
    store = SqlMetadataStore(url)
    try:
        registry = Registry(store)
        barrier.wait()
        try:
            registry.set_alias("m", PRODUCTION, version, reason=f"to {version}", expected=expected)
            results.put((version, "moved"))
        except AliasConflictError as exc:
            results.put((version, f"conflict: {exc.current}"))
    finally:
        store.close()
