"""Several processes on one store at once, on SQLite and PostgreSQL: pushes get distinct
version numbers and leave ``production`` on the highest; of several people moving one alias
at once (compare-and-set), exactly one wins and the others are told; concurrent
``lockgate run`` of copies of one project, sharing one store and one artifact root, lose no
artifact (every registered folder exists and its fingerprint matches) and share no version.

Processes are started with ``spawn`` (a fresh interpreter each, as on another machine) and
released together by a barrier."""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from concurrent_store_workers import promote, push_model
from support import LOCKGATE, publish_pushed_model

from lockgate import PushedModel
from lockgate.core.fingerprint import path_fingerprint
from lockgate.errors import AliasConflictError
from lockgate.metadata.registry import PRODUCTION, Registry
from lockgate.metadata.store import SqlMetadataStore

PROCESSES = 6
PUSHED = re.compile(r"Pushed: yes, model 'penguins' version (\d+), now in production")


def _together(target: Any, argument_lists: list[tuple[Any, ...]]) -> list[Any]:
    """Run ``target`` in one spawned process per argument list, released together."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(argument_lists))
    results = context.Queue()
    processes = [
        context.Process(target=target, args=(*args, barrier, results)) for args in argument_lists
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    codes = [process.exitcode for process in processes]
    assert codes == [0] * len(processes), codes
    return [results.get(timeout=10) for _ in processes]


def test_pushes_at_once_get_distinct_versions_and_production_ends_on_the_highest(
    store_url: str, tmp_path: Path
) -> None:
    SqlMetadataStore(store_url).close()  # migrated once; the processes only open it
    root = tmp_path / "artifacts"
    results = _together(push_model, [(store_url, str(root), i) for i in range(PROCESSES)])
    numbers = sorted(number for _, number in results)
    assert numbers == list(range(1, PROCESSES + 1))  # no duplicate, no gap
    store = SqlMetadataStore(store_url)
    try:
        registry = Registry(store)
        assert registry.aliases("m") == {PRODUCTION: PROCESSES}
        moves = [h["version"] for h in registry.alias_history("m")]
        assert moves == sorted(moves, reverse=True)  # production only ever moved up
        for version in registry.versions("m"):
            pushed = version.artifact
            assert Path(pushed.uri).is_dir() and path_fingerprint(pushed.uri) == pushed.fingerprint
            index = int(Path(pushed.uri).name.removeprefix("pushed-"))
            assert (index, version.version) in results
    finally:
        store.close()


def test_of_several_moves_of_one_alias_at_once_the_first_wins_and_the_rest_conflict(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    registry = Registry(store)
    for number in range(1, PROCESSES + 2):
        (tmp_path / f"v{number}").mkdir()
        pushed = PushedModel(uri=str(tmp_path / f"v{number}"), properties={})
        registry.register("m", publish_pushed_model(store, pushed), blessed=True)
    registry.set_alias("m", PRODUCTION, 1, reason="first")
    movers = [(store.url, version, 1) for version in range(2, PROCESSES + 2)]
    results = dict(_together(promote, movers))
    winners = [version for version, outcome in results.items() if outcome == "moved"]
    assert len(winners) == 1, results
    (winner,) = winners
    assert {outcome for v, outcome in results.items() if v != winner} == {f"conflict: {winner}"}
    assert registry.aliases("m") == {PRODUCTION: winner}
    assert [h["version"] for h in registry.alias_history("m")] == [winner, 1]
    # a mover who read the alias after the winner's move goes through
    registry.set_alias("m", PRODUCTION, 1, reason="back", expected=winner)
    with pytest.raises(AliasConflictError, match="is on version 1, but this move expected it on"):
        registry.set_alias("m", PRODUCTION, 2, reason="stale", expected=winner)


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared' / 'metadata.db'}"
    return str(request.getfixturevalue("empty_postgres"))


def test_concurrent_runs_of_copies_of_a_project_share_one_store_and_lose_nothing(
    penguins_project: Path, shared_store: str, tmp_path: Path
) -> None:
    """Three people run their copy of the project at once, each with a training parameter of
    their own, against one store and one artifact root."""
    root = tmp_path / "shared" / "artifacts"
    env = {
        **os.environ,
        "LOCKGATE_STORE_URL": shared_store,
        "LOCKGATE_ARTIFACT_ROOT": str(root),
    }
    copies = []
    for index in range(3):
        copy = tmp_path / f"person{index}"
        shutil.copytree(penguins_project, copy)
        copies.append(copy)
    processes = [
        subprocess.Popen(
            [*LOCKGATE, "run", "--set", f"train.params.n_estimators={20 + index}"],
            cwd=copy,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for index, copy in enumerate(copies)
    ]
    outputs = [process.communicate(timeout=400)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
    pushed = sorted(int(m.group(1)) for out in outputs for m in [PUSHED.search(out)] if m)
    assert pushed == [1, 2, 3]
    store = SqlMetadataStore(shared_store)
    try:
        registry = Registry(store)
        assert [v.version for v in registry.versions("penguins")] == [1, 2, 3]
        assert registry.aliases("penguins") == {PRODUCTION: 3}
        every = [
            artifact
            for type_name in ("Examples", "Statistics", "Schema", "Model", "PushedModel")
            for artifact in store.artifacts_of_type(type_name)
        ]
        assert every
        for artifact in every:  # no lost artifact: the folder is there and unchanged
            assert Path(artifact.uri).is_relative_to(root), artifact.uri
            assert path_fingerprint(artifact.uri) == artifact.fingerprint, artifact.uri
        assert {r.status for r in store.list_runs(limit=10)} == {"complete"}
    finally:
        store.close()
