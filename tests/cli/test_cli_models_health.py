"""A promotion that would take the server down: ``lockgate models promote``, ``rollback`` and
``canary`` refuse a version whose files changed; a real ``lockgate serve`` shows a bad
registry move in /metrics and ``models list``, starts on the newest earlier version that
loads, and exits 2 only when none does."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from click.testing import CliRunner, Result
from prometheus_client.parser import text_string_to_metric_families
from support import LOCKGATE, free_port, lockgate, wait_until_ready

from lockgate.cli.main import cli
from lockgate.metadata.registry import PRODUCTION, Registry
from lockgate.metadata.store import SqlMetadataStore

Samples = dict[tuple[str, frozenset], float]

BODY = {
    "inputs": [
        {"name": "a", "datatype": "FP64", "shape": [2], "data": [0.0, 1.0]},
        {"name": "b", "datatype": "FP64", "shape": [2], "data": [0.0, 0.0]},
    ]
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Three blessed versions of an imported classifier 'species', no alias yet."""
    import skops.io
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "lockgate.toml").write_text(
        '[project]\nname = "health"\n\n[serve]\nlog_sample_rate = 0\n'
    )
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    X = np.column_stack([y + rng.normal(0, 0.3, 200), rng.normal(0, 1, 200)])
    skops.io.dump(LogisticRegression().fit(X, np.array(["no", "yes"])[y]), tmp_path / "clf.skops")
    for _ in range(3):
        result = models(
            folder, "import", str(tmp_path / "clf.skops"), "--name", "species", "--features",
            "a,b", "--bless", "--reason", "checked offline",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    return folder


def models(project: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["models", *args, "--project", str(project)])


@contextmanager
def registry(project: Path) -> Iterator[Registry]:
    """The project's registry as a second tool would open it: no check before a move."""
    store = SqlMetadataStore(f"sqlite:///{project / '.lockgate' / 'metadata.db'}")
    try:
        yield Registry(store)
    finally:
        store.close()


def corrupt(project: Path, version: int) -> Path:
    with registry(project) as reg:
        folder = Path(reg.get("species", version).artifact.uri)
    [path] = (folder / "model").glob("*.skops")
    with path.open("ab") as file:
        file.write(b"x")
    return path


def history(project: Path, alias: str = PRODUCTION) -> list[tuple[int | None, str | None]]:
    with registry(project) as reg:
        return [(h["version"], h["reason"]) for h in reg.alias_history("species", alias)]


def aliases(project: Path) -> dict[str, int]:
    with registry(project) as reg:
        return reg.aliases("species")


def metrics(url: str) -> Samples:
    text = httpx.get(f"{url}/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def scrape_until(url: str, check: Callable[[Samples], bool], timeout_s: float = 20.0) -> Samples:
    """/metrics, scraped until ``check`` holds (the follower polls every 0.2 s)."""
    deadline = time.monotonic() + timeout_s
    while not check(samples := metrics(url)):
        assert time.monotonic() < deadline, f"timed out; last scrape: {samples}"
        time.sleep(0.1)
    return samples


class Server:
    """`lockgate serve` in a subprocess, its stdout and stderr in files."""

    def __init__(self, project: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out, self.err = project / "serve.out", project / "serve.err"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_SERVE")}
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = subprocess.Popen(
                [*LOCKGATE, "serve", "--port", str(self.port), "--poll-interval", "0.2"],
                cwd=project,
                env=environ,
                stdout=out,
                stderr=err,
                text=True,
            )

    @property
    def name(self) -> str:
        return f"{socket.gethostname()}:{self.port}"

    def stderr(self) -> str:
        return self.err.read_text()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout=30)


@pytest.fixture
def server(project: Path) -> Iterator[Callable[[], Server]]:
    started: list[Server] = []

    def start() -> Server:
        started.append(Server(project))
        return started[-1]

    yield start
    for item in started:
        item.stop()


def test_promote_refuses_a_version_whose_files_changed(project: Path) -> None:
    assert models(project, "promote", "species", "1").exit_code == 0
    path = corrupt(project, 2)
    before = history(project)
    for force in ([], ["--force", "--reason", "I know better"]):
        result = models(project, "promote", "species", "2", *force)
        assert result.exit_code == 2, result.output
        assert "error: model 'species' version 2 does not load: model file" in result.output
        assert str(path) in result.output and "sha256" in result.output
        assert "alias 'production' stays on version 1" in result.output
        assert "hint: restore its files from the artifact store" in result.output
    assert aliases(project) == {PRODUCTION: 1}
    assert history(project) == before
    assert models(project, "promote", "species", "3").exit_code == 0


def test_rollback_and_canary_refuse_a_version_whose_files_changed(project: Path) -> None:
    for version in ("1", "2"):
        assert models(project, "promote", "species", version).exit_code == 0
    corrupt(project, 1)
    before = history(project)
    result = models(project, "rollback", "species", "--reason", "v2 drifted")
    assert result.exit_code == 2, result.output
    assert "version 1 does not load" in result.output and "stays on version 2" in result.output
    result = models(project, "canary", "species", "1", "--percent", "10")
    assert result.exit_code == 2, result.output
    assert "version 1 does not load" in result.output
    assert "alias 'canary' is not set" in result.output
    assert aliases(project) == {PRODUCTION: 2}
    assert history(project) == before and history(project, "canary") == []
    result = models(project, "canary", "species", "3", "--percent", "10")
    assert result.exit_code == 0, result.output


def test_a_bad_move_behind_the_clis_back_shows_in_metrics_and_models_list(
    project: Path, server: Callable[[], Server]
) -> None:
    assert models(project, "promote", "species", "1").exit_code == 0
    serve = server()
    wait_until_ready(serve.process, serve.url)
    corrupt(project, 2)
    with registry(project) as reg:  # a second tool, with no check
        reg.set_alias("species", PRODUCTION, 2, reason="behind the CLI's back")
    failed = {"model": "species", "version": "2", "reason": "integrity"}
    samples = scrape_until(
        serve.url, lambda s: value(s, "lockgate_model_load_failures_total", **failed) == 1
    )
    primary = {"model": "species", "role": "primary"}
    assert value(samples, "lockgate_serving_version", **primary) == 1
    assert value(samples, "lockgate_registry_version", **primary) == 2
    assert value(samples, "lockgate_serving_registry_mismatch", **primary) == 1
    answer = httpx.post(f"{serve.url}/v2/models/species/infer", json=BODY)
    assert answer.json()["model_version"] == "1"
    listing = models(project, "list").output
    assert (
        f"production=2 (server {serve.name} serves 1: version 2 failed to load (integrity):"
        " model file"
    ) in listing, listing
    [row] = json.loads(models(project, "list", "--json").output)
    [state] = row["servers"]
    assert (state["server"], state["registry_version"], state["served_version"]) == (
        serve.name,
        2,
        1,
    )
    assert (state["failed_version"], state["failure_reason"], state["agrees"]) == (
        2,
        "integrity",
        False,
    )
    assert "sha256" in state["last_error"] and not state["stale"]
    versions = models(project, "list", "species").output
    assert f"server {serve.name} (pid {serve.process.pid}): production is 2" in versions
    # rolled back with the CLI: the server agrees again, and list says nothing more
    assert models(project, "rollback", "species", "--reason", "v2 is broken").exit_code == 0
    scrape_until(
        serve.url, lambda s: value(s, "lockgate_serving_registry_mismatch", **primary) == 0
    )
    assert "production=1\n" in models(project, "list").output


def test_a_server_started_on_a_broken_production_serves_the_previous_version(
    project: Path, server: Callable[[], Server]
) -> None:
    for version in ("1", "2"):
        assert models(project, "promote", "species", version).exit_code == 0
    corrupt(project, 2)
    serve = server()
    wait_until_ready(serve.process, serve.url)
    warning = next(line for line in serve.stderr().splitlines() if "WARNING" in line)
    assert "model 'species': production version 2 does not load (integrity): model file" in warning
    assert "serving version 1 instead" in warning
    answer = httpx.post(f"{serve.url}/v2/models/species/infer", json=BODY)
    assert answer.json()["model_version"] == "1"
    samples = metrics(serve.url)
    primary = {"model": "species", "role": "primary"}
    assert value(samples, "lockgate_serving_version", **primary) == 1
    assert value(samples, "lockgate_serving_registry_mismatch", **primary) == 1
    failed = {"model": "species", "version": "2", "reason": "integrity"}
    assert value(samples, "lockgate_model_load_failures_total", **failed) == 1
    assert (
        f"production=2 (server {serve.name} serves 1: version 2" in models(project, "list").output
    )
    # it keeps following the registry: a version that loads, once promoted, takes over
    assert models(project, "promote", "species", "3").exit_code == 0
    samples = scrape_until(
        serve.url, lambda s: value(s, "lockgate_serving_version", **primary) == 3
    )
    assert value(samples, "lockgate_serving_registry_mismatch", **primary) == 0
    assert serve.stop() == 0  # SIGTERM: a clean stop, that takes its serving_status rows
    [row] = json.loads(models(project, "list", "--json").output)
    assert row["servers"] == []


def test_a_server_with_no_version_that_loads_exits_2(project: Path) -> None:
    for version in ("1", "2"):
        assert models(project, "promote", "species", version).exit_code == 0
    corrupt(project, 1)
    corrupt(project, 2)
    result = lockgate("serve", "--port", str(free_port()), cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "error: no model could be loaded (species: model 'species' version 2" in result.stderr
    assert "no earlier 'production' version loads either: model 'species' version 1" in (
        result.stderr
    )
    assert "hint: promote a version that loads" in result.stderr
