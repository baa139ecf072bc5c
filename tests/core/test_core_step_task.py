"""``run_step``, the unit a runner executes wherever a step lands: it reopens the artifact
store by address, publishes the outputs there and hands back plain data for the driver
to register. In-process (the local runner) it is the driver's own store, with no copy;
a failure leaves nothing published and nothing staged; a closed gate that keeps its
findings publishes them; an address carries storage options only when they were given."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lockgate import Examples, Input, Output, Statistics, component
from lockgate.core.artifact_store import ArtifactStoreAddress, LocalArtifactStore, in_this_thread
from lockgate.core.artifacts import Artifact
from lockgate.core.component import Component
from lockgate.core.fingerprint import path_fingerprint
from lockgate.core.fsspec_store import OPTIONS_ENV, FsspecArtifactStore
from lockgate.core.step_task import StepTask, output_uris, run_step
from lockgate.errors import GateClosedError


@component
def write(examples: Output[Examples], *, text: str) -> None:
    Path(examples.path, "rows.txt").write_text(text)
    examples.properties["staged_at"] = str(examples.path)


@component
def read(examples: Input[Examples], statistics: Output[Statistics]) -> None:
    statistics.properties["read_from"] = str(examples.path)
    Path(statistics.path, "count.txt").write_text(Path(examples.path, "rows.txt").read_text())


@component
def fails(examples: Output[Examples]) -> None:
    Path(examples.path, "half.txt").write_text("{")
    raise ValueError("column 'fare' is not in the data")


@component
def gate(statistics: Output[Statistics]) -> None:
    Path(statistics.path, "report.txt").write_text("1 anomaly")
    statistics.properties["anomalies"] = 1
    raise GateClosedError("1 blocking anomaly", publish_outputs=True)


def task(
    store: LocalArtifactStore,
    comp: Component,
    key: str,
    inputs: dict[str, Artifact | None] | None = None,
    **params: object,
) -> StepTask:
    return StepTask(comp, inputs or {}, params, store.address(), "p", comp.name, key)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalArtifactStore]:
    artifacts = LocalArtifactStore(tmp_path / "artifacts")
    with in_this_thread(artifacts):  # as the launcher does around the local runner's call
        yield artifacts
    artifacts.close()


def test_in_the_drivers_thread_the_address_opens_the_drivers_own_store(
    store: LocalArtifactStore,
) -> None:
    assert store.address().open() is store
    assert pickle.loads(pickle.dumps(store.address())) == store.address()
    elsewhere: list[object] = []
    thread = threading.Thread(target=lambda: elsewhere.append(store.address().open()))
    thread.start()
    thread.join()
    assert elsewhere[0] is not store  # another thread (a worker) opens its own
    assert isinstance(elsewhere[0], LocalArtifactStore) and elsewhere[0].root == store.root
    elsewhere[0].close()


def test_a_step_publishes_by_one_rename_and_reads_its_input_in_place(
    store: LocalArtifactStore,
) -> None:
    written = run_step(task(store, write, "1", text="1\n2\n")).outputs["examples"]
    assert written.uri == store.uri_for("p", "write", "examples", "1")
    assert written.local_path is None  # a folder of this node does not travel
    assert written.fingerprint == path_fingerprint(Path(written.uri))
    assert Path(written.properties["staged_at"]).parent.parent == Path(store.root, ".tmp")
    assert sorted(p.name for p in Path(written.uri).iterdir()) == ["rows.txt"]

    counted = run_step(task(store, read, "2", {"examples": written}))
    assert counted.outputs["statistics"].properties["read_from"] == written.uri  # no copy
    assert counted.gate is None


def test_a_failed_step_leaves_nothing_published_and_nothing_staged(
    store: LocalArtifactStore,
) -> None:
    failing = task(store, fails, "3")
    with pytest.raises(ValueError, match="column 'fare' is not in the data"):
        run_step(failing)
    assert not any(Path(uri).exists() for uri in output_uris(store, failing))
    assert list(Path(store.root).rglob("half.txt")) == []


def test_a_closed_gate_that_keeps_its_findings_publishes_them(store: LocalArtifactStore) -> None:
    outcome = run_step(task(store, gate, "4"))
    assert isinstance(outcome.gate, GateClosedError)
    assert "GateClosedError: 1 blocking anomaly" in outcome.gate_message
    findings = outcome.outputs["statistics"]
    assert findings.properties == {"anomalies": 1}
    assert Path(findings.uri, "report.txt").read_text() == "1 anomaly"


def test_an_address_carries_storage_options_only_when_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OPTIONS_ENV, '{"skip_instance_cache": true}')
    from_env = FsspecArtifactStore("memory://env", cache_dir=tmp_path)
    assert from_env.address() == ArtifactStoreAddress("memory://env")  # each node's own env
    given = FsspecArtifactStore("memory://given", storage_options={}, cache_dir=tmp_path)
    assert given.address() == ArtifactStoreAddress("memory://given", "{}")
    reopened = pickle.loads(pickle.dumps(given.address())).open()
    assert isinstance(reopened, FsspecArtifactStore) and reopened.root == "memory://given"
    assert reopened.address() == given.address()
