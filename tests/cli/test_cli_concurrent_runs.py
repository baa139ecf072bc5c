"""Two `lockgate run` on one project at once (two terminals, or cron and a person), on SQLite
and on PostgreSQL: no failure, no duplicate version, every blessed model in the registry."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from support import LOCKGATE

from lockgate.metadata.registry import Registry
from lockgate.metadata.store import SqlMetadataStore

PAIRS = 4
PUSHED = re.compile(r"Pushed: yes, model 'penguins' version (\d+), now in production")


@pytest.fixture(params=["sqlite", "postgresql"])
def project_env(
    request: pytest.FixtureRequest, penguins_project: Path
) -> tuple[Path, dict[str, str], str]:
    """The penguins project, its environment and its store URL on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{penguins_project / '.lockgate' / 'metadata.db'}"
    else:
        url = str(request.getfixturevalue("empty_postgres"))
    return penguins_project, {**os.environ, "LOCKGATE_STORE_URL": url}, url


def _run_together(project: Path, env: dict[str, str], trees: int = 10) -> list[tuple[int, str]]:
    """Two runs started at the same moment, each with a training parameter that no earlier
    run used: the data steps come from the cache (after the first pair), and both runs
    train, evaluate and push a model of their own at the same time. (exit status, output)
    of each."""
    processes = [
        subprocess.Popen(
            [*LOCKGATE, "run", "--set", f"train.params.n_estimators={trees + offset}"],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for offset in (0, 1)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    return [(p.returncode, out) for p, out in zip(processes, outputs, strict=True)]


def _check_registry(url: str, expected_versions: int, pushed: list[int]) -> None:
    store = SqlMetadataStore(url)
    try:
        registry = Registry(store)
        versions = registry.versions("penguins")
        numbers = [v.version for v in versions]
        assert numbers == list(range(1, expected_versions + 1))  # no gap, no duplicate
        assert sorted(pushed) == numbers  # each run printed the version it pushed
        # every blessing that a run wrote is a registered version
        blessed = [a for a in store.artifacts_of_type("Blessing") if a.properties["blessed"]]
        assert len(blessed) == expected_versions
        pushed_models = store.artifacts_of_type("PushedModel")
        assert sorted(registry.version_of(a).version for a in pushed_models) == numbers
        # production moved once per push, and ends on the last version registered
        history = registry.alias_history("penguins")
        assert sorted(h["version"] for h in history) == numbers
        assert registry.aliases("penguins") == {"production": expected_versions}
        assert {r.status for r in store.list_runs(limit=100)} == {"complete"}
    finally:
        store.close()


def test_two_first_runs_on_a_fresh_store_both_complete(
    project_env: tuple[Path, dict[str, str], str],
) -> None:
    project, env, url = project_env
    results = _run_together(project, env)
    for status, output in results:
        assert status == 0, output
    pushed = [int(m.group(1)) for _, out in results for m in [PUSHED.search(out)] if m]
    _check_registry(url, 2, pushed)


def test_concurrent_pairs_of_runs_lose_nothing(
    project_env: tuple[Path, dict[str, str], str],
) -> None:
    project, env, url = project_env
    pushed: list[int] = []
    for pair in range(PAIRS):
        for status, output in _run_together(project, env, trees=10 + 2 * pair):
            assert status == 0, output
            assert "error" not in output.lower(), output
            match = PUSHED.search(output)
            assert match is not None, output
            pushed.append(int(match.group(1)))
    _check_registry(url, 2 * PAIRS, pushed)
