"""A version is checked as the server loads it before an alias moves to it; the follower
reports what it serves to /metrics and serving_status; a server that starts on a version
that does not load serves the newest earlier one that does."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lockgate.errors import ModelError, ModelIntegrityError
from lockgate.metadata import serving_status as ss
from lockgate.metadata.registry import CANARY, PRODUCTION, Registry
from lockgate.metadata.store import SqlMetadataStore
from lockgate.serving.app import create_app
from lockgate.serving.metrics import ServingMetrics
from lockgate.serving.promotion import failure_reason, verified_registry, verify_version
from lockgate.serving.reload import RegistryFollower, ServingOptions
from lockgate.serving.repository import ModelRepository

FAST = ServingOptions(release_grace_s=0.05, retry_failed_after_s=0.0)
Make = Callable[..., RegistryFollower]


def corrupt(version: Any) -> Path:
    """Append a byte to the version's model file, as a disk or a careless hand might."""
    path = Path(version.artifact.uri) / "model" / "model.skops"
    with path.open("ab") as file:
        file.write(b"x")
    return path


def break_samples(store: SqlMetadataStore, version: Any) -> None:
    """A samples.json the model cannot answer, re-recorded as if it had been pushed so."""
    from lockgate.core.fingerprint import path_fingerprint
    from lockgate.metadata import tables

    samples = Path(version.artifact.uri) / "samples.json"
    samples.write_text(json.dumps({"inputs": {"bill_length_mm": ["x"]}}))
    with store.transaction() as conn:
        conn.execute(
            tables.artifacts.update()
            .where(tables.artifacts.c.id == version.artifact.id)
            .values(fingerprint=path_fingerprint(version.artifact.uri))
        )


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    text = httpx.get(f"{url}/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def gauge(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def follower(store: SqlMetadataStore) -> Iterator[Make]:
    made: list[RegistryFollower] = []

    def make(models: list[str], **kwargs: Any) -> RegistryFollower:
        made.append(RegistryFollower(store.url, ModelRepository(), models, 0.05, **kwargs))
        return made[-1]

    yield make
    for item in made:
        item.stop()


def test_verify_names_the_version_the_file_the_reason_and_what_to_do(
    store: SqlMetadataStore, push_version: Any
) -> None:
    verify_version(push_version(store, seed=1))  # loads, answers its samples, is closed
    changed = push_version(store, seed=2, alias=None)
    path = corrupt(changed)
    with pytest.raises(
        ModelIntegrityError, match=r"model 'penguins' version 2 does not load: model file .*sha256"
    ) as integrity:
        verify_version(changed)
    assert integrity.value.path == str(path) and failure_reason(integrity.value) == "integrity"
    assert "restore its files" in (integrity.value.hint or "")
    gone = push_version(store, seed=3, alias=None)
    shutil.rmtree(gone.artifact.uri)
    with pytest.raises(ModelError, match="model 'penguins' version 3 does not load") as load:
        verify_version(gone)
    assert failure_reason(load.value) in ("load", "integrity")
    break_samples(store, push_version(store, seed=4, alias=None))
    with pytest.raises(ModelError, match="version 4 failed its warm-up request") as warm:
        verify_version(Registry(store).get("penguins", 4))
    assert not isinstance(warm.value, ModelIntegrityError)
    assert failure_reason(warm.value) == "warm-up"


def test_a_verified_registry_moves_no_alias_onto_a_version_that_does_not_load(
    store: SqlMetadataStore, push_version: Any
) -> None:
    push_version(store, seed=1)
    bad = push_version(store, seed=2, alias=None)
    corrupt(bad)
    registry = verified_registry(store)
    history = registry.alias_history("penguins")
    for move in (
        lambda: registry.set_alias("penguins", PRODUCTION, 2),
        lambda: registry.set_alias("penguins", PRODUCTION, 2, force=True, reason="no bypass"),
        lambda: registry.rollback("penguins", reason="back", to=2),
        lambda: registry.start_canary("penguins", 2, percent=10),
    ):
        with pytest.raises(ModelIntegrityError, match="version 2 does not load"):
            move()
    assert registry.aliases("penguins") == {PRODUCTION: 1}
    assert registry.alias_history("penguins") == history
    assert registry.alias_history("penguins", CANARY) == []
    good = push_version(store, seed=3, alias=None)
    registry.set_alias("penguins", PRODUCTION, good.version, reason="loads")
    assert registry.aliases("penguins") == {PRODUCTION: 3}


def test_metrics_show_what_serves_and_a_bad_move_made_behind_the_clis_back(
    store: SqlMetadataStore, push_version: Any, follower: Make, serve_app: Any
) -> None:
    push_version(store, seed=1)
    metrics = ServingMetrics()
    follow = follower(["penguins"], options=FAST, metrics=metrics)
    assert follow.poll_once() == {"penguins": None}
    url = serve_app(create_app(follow.repository, metrics=metrics))
    primary = {"model": "penguins", "role": "primary"}
    samples = scrape(url)
    assert gauge(samples, "lockgate_serving_version", **primary) == 1
    assert gauge(samples, "lockgate_serving_registry_mismatch", **primary) == 0
    # a second tool moves production with a Registry that checks nothing
    bad = push_version(store, seed=2, alias=None)
    corrupt(bad)
    Registry(store).set_alias("penguins", PRODUCTION, bad.version, reason="behind its back")
    assert "version 2 does not load" in (follow.poll_once(log_errors=False)["penguins"] or "")
    samples = scrape(url)
    assert gauge(samples, "lockgate_serving_version", **primary) == 1
    assert gauge(samples, "lockgate_registry_version", **primary) == 2
    assert gauge(samples, "lockgate_serving_registry_mismatch", **primary) == 1
    failures = {"model": "penguins", "version": "2", "reason": "integrity"}
    assert gauge(samples, "lockgate_model_load_failures_total", **failures) == 1
    [row] = ss.reports(store, "penguins")
    assert row.row == ss.ServingRow(
        "penguins", ss.PRIMARY, PRODUCTION, 2, 1, 2, "integrity", row.row.last_error
    )
    assert "sha256" in (row.row.last_error or "") and row.disagrees_with(2)
    # back to 1, and a canary: both roles in line with the registry
    push_version(store, seed=3, alias=CANARY)
    Registry(store).set_alias("penguins", PRODUCTION, 1, reason="back")
    assert follow.poll_once() == {"penguins": None}
    samples = scrape(url)
    canary = {"model": "penguins", "role": "canary"}
    assert gauge(samples, "lockgate_serving_version", **canary) == 3
    assert gauge(samples, "lockgate_serving_registry_mismatch", **primary) == 0
    assert gauge(samples, "lockgate_serving_registry_mismatch", **canary) == 0
    assert not any(r.disagrees_with(r.row.wanted_version) for r in ss.reports(store))
    Registry(store).remove_alias("penguins", CANARY, reason="done")
    follow.poll_once()
    samples = scrape(url)
    assert gauge(samples, "lockgate_serving_version", **canary) is None  # role gone
    assert [r.row.role for r in ss.reports(store, "penguins")] == [ss.PRIMARY]
    follow.stop()
    assert ss.reports(store) == []  # a server that stops takes its rows with it


def test_a_follower_starting_on_a_broken_production_serves_the_newest_earlier_that_loads(
    store: SqlMetadataStore,
    push_version: Any,
    follower: Make,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for seed in (1, 2, 3):
        push_version(store, seed=seed)  # production history: 3, 2, 1
    corrupt(Registry(store).get("penguins", 3))
    corrupt(Registry(store).get("penguins", 2))
    metrics = ServingMetrics()
    follow = follower(["penguins"], options=FAST, metrics=metrics)
    with caplog.at_level(logging.WARNING, logger="lockgate.serving.reload"):
        assert follow.poll_once() == {"penguins": None}
    assert follow.repository.get("penguins").version == "1"
    status = follow.status()["penguins"]
    assert (status["serving"], status["wanted"], status["fallback_from"]) == (1, 3, 3)
    assert status["failure_reason"] == "integrity" and "version 3" in status["last_error"]
    [warning] = follow.warnings().values()
    assert "production version 3 does not load (integrity): model file" in warning
    assert "serving version 1 instead" in warning and warning in caplog.text
    [row] = ss.reports(store, "penguins")
    assert (row.row.wanted_version, row.row.served_version, row.row.failed_version) == (3, 1, 3)
    # it keeps following: a version that loads, once promoted, takes over
    push_version(store, seed=4)
    assert follow.poll_once() == {"penguins": None}
    assert follow.repository.get("penguins").version == "4" and follow.warnings() == {}
    [row] = ss.reports(store, "penguins")
    assert (row.row.served_version, row.row.failed_version, row.row.last_error) == (4, None, None)


def test_a_follower_with_nothing_that_loads_says_what_it_tried(
    store: SqlMetadataStore, push_version: Any, follower: Make
) -> None:
    for seed in (1, 2):
        corrupt(push_version(store, seed=seed))
    follow = follower(["penguins"], options=FAST)
    error = follow.poll_once(log_errors=False)["penguins"] or ""
    assert "version 2 does not load" in error
    assert "no earlier 'production' version loads either: model 'penguins' version 1" in error
    assert not follow.repository.ready


def test_a_broken_canary_at_start_leaves_production_serving_alone(
    store: SqlMetadataStore, push_version: Any, follower: Make
) -> None:
    push_version(store, seed=1)
    corrupt(push_version(store, seed=2, alias=CANARY))
    follow = follower(["penguins"], options=FAST)
    assert follow.poll_once(log_errors=False) == {"penguins": None}
    assert follow.repository.versions("penguins") == ["1"]
    [warning] = follow.warnings().values()
    assert "canary version 2 does not load (integrity)" in warning
    assert "serving production version 1 without a canary" in warning
    rows = {r.row.role: r.row for r in ss.reports(store, "penguins")}
    assert (rows[ss.PRIMARY].served_version, rows[ss.PRIMARY].failed_version) == (1, None)
    assert (rows[ss.CANARY].wanted_version, rows[ss.CANARY].served_version) == (2, None)
    assert rows[ss.CANARY].failed_version == 2
