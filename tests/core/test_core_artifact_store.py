"""One contract for every ArtifactStore (the local folder, fsspec on memory:// and file://):
publish whole, read through a working copy, discard, sweep what a dead writer left; and the
request log publishing through the same path onto a URL."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow.parquet as pq
import pytest
from support import start_plain_execution

from lockgate import Input, Output, Pipeline, Statistics, component, run_pipeline
from lockgate.core.artifact_store import LocalArtifactStore
from lockgate.core.artifacts import Examples, InferenceLog
from lockgate.core.fsspec_store import MARKER, FsspecArtifactStore
from lockgate.core.protocols import ArtifactStore
from lockgate.core.publish import Publication
from lockgate.metadata.store import SqlMetadataStore


def make_store(kind: str, tmp_path: Path) -> ArtifactStore:
    cache = tmp_path / "cache"
    if kind == "local":
        return LocalArtifactStore(tmp_path / "artifacts")
    if kind == "file":
        return FsspecArtifactStore((tmp_path / "shared").as_uri(), cache_dir=cache)
    return FsspecArtifactStore(f"memory://{tmp_path.name}", cache_dir=cache)


KINDS = ["local", "file", "memory"]


@pytest.mark.parametrize("kind", KINDS)
def test_publish_then_read_back_through_a_working_copy(kind: str, tmp_path: Path) -> None:
    artifacts = make_store(kind, tmp_path)
    publication = Publication(artifacts, pipeline="p", step="s")
    examples = publication.stage("examples", Examples)
    (examples.path / "train").mkdir()
    (examples.path / "train" / "rows.txt").write_text("1\n2\n")
    registered: list[str] = []
    publication.publish(7, lambda outputs: registered.extend(a.uri for a in outputs.values()))
    assert registered == [artifacts.uri_for("p", "s", "examples", "7")] == [examples.uri]
    assert artifacts.exists(examples.uri)
    copy = artifacts.local_copy(examples.uri, examples.fingerprint)
    assert (copy / "train" / "rows.txt").read_text() == "1\n2\n"
    assert examples.split_path("train") == copy / "train"
    if kind == "local":
        assert copy == Path(examples.uri)  # the folder itself: no copy
    artifacts.discard(examples.uri)
    assert not artifacts.exists(examples.uri)
    artifacts.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_failed_registration_leaves_nothing_published(kind: str, tmp_path: Path) -> None:
    artifacts = make_store(kind, tmp_path)
    publication = Publication(artifacts, pipeline="p", step="s")
    examples = publication.stage("examples", Examples)
    (examples.path / "rows.txt").write_text("1\n")
    staging = examples.path

    def refuse(outputs: object) -> None:
        raise RuntimeError("commit refused")

    with pytest.raises(RuntimeError, match="commit refused"):
        publication.publish(8, refuse)
    assert not artifacts.exists(artifacts.uri_for("p", "s", "examples", "8"))
    assert not staging.exists()
    artifacts.close()


@pytest.mark.parametrize("kind", KINDS)
def test_sweep_removes_a_dead_sessions_unregistered_artifacts_only(
    kind: str, tmp_path: Path, store: SqlMetadataStore
) -> None:
    dead = make_store(kind, tmp_path)
    uris = []
    for key in ("kept", "orphan"):
        staging = dead.staging_dir("s", "examples")
        (staging / "rows.txt").write_text(key)
        uris.append(dead.publish(staging, dead.uri_for("p", "s", "x", key), fingerprint=key))
    kept, orphan = uris
    _, execution = start_plain_execution(store)
    store.publish_execution(execution, {"examples": Examples(uri=kept, fingerprint="kept")})
    assert dead._session_lock is not None  # type: ignore[attr-defined]
    dead._session_lock.close()  # type: ignore[attr-defined]  # what a kill does

    removed = make_store(kind, tmp_path).sweep(store)
    assert orphan in removed and kept not in removed
    assert dead.exists(kept) and not dead.exists(orphan)


def test_the_request_log_publishes_onto_a_url_through_the_same_path(
    store: SqlMetadataStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lockgate.serving.request_log import RequestLogger

    monkeypatch.setenv("LOCKGATE_ARTIFACT_CACHE", str(tmp_path / "cache"))
    root = f"memory://logs-{tmp_path.name}"
    logger = RequestLogger(root, store=store, flush_rows=1000)
    servable = SimpleNamespace(name="penguins", version="1")
    columns = {"bill_length_mm": np.array([38.0, 43.0])}
    assert logger.log(servable, columns, {"predicted": np.array(["a", "b"])})  # type: ignore[arg-type]
    logger.close()
    (log,) = store.artifacts_of_type("InferenceLog")
    assert isinstance(log, InferenceLog) and log.uri.startswith(f"{root}/serving/penguins/")
    fs = FsspecArtifactStore(root).fs
    assert fs.exists(f"{log.uri}/{MARKER}")
    table = pq.read_table(log.path / "part-0.parquet")
    assert table.column("bill_length_mm").to_pylist() == [38.0, 43.0]


def test_the_artifact_root_setting_may_be_a_url(tmp_path: Path) -> None:
    from lockgate.settings import Settings

    def root(value: str) -> Path | str:
        environ = {"LOCKGATE_ARTIFACT_ROOT": value}
        return Settings.load(tmp_path, environ=environ).resolved_artifact_root

    assert root("s3://bucket/lockgate") == "s3://bucket/lockgate"
    assert root("file:///mnt/shared") == Path("/mnt/shared")
    assert root("artifacts") == tmp_path.resolve() / "artifacts"


def test_moving_the_root_to_a_url_keeps_the_cache_and_reads_the_old_artifacts(
    tmp_path: Path, store: SqlMetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCKGATE_ARTIFACT_CACHE", str(tmp_path / "cache"))

    @component
    def make(examples: Output[Examples]) -> None:
        (examples.path / "rows.txt").write_text("1\n2\n")

    @component
    def count(examples: Input[Examples], statistics: Output[Statistics], *, n: int = 0) -> None:
        rows = (examples.path / "rows.txt").read_text().split()
        (statistics.path / "count.txt").write_text(str(len(rows) + n))

    def pipeline(n: int) -> Pipeline:
        first = make()
        return Pipeline("moved", [first, count(examples=first.outputs.examples, n=n)])

    assert run_pipeline(pipeline(0), store=store, artifact_root=tmp_path / "artifacts").ok
    url = f"memory://moved-{tmp_path.name}"
    again = run_pipeline(pipeline(0), store=store, artifact_root=url)
    assert {r.status for r in again.steps.values()} == {"cached"}
    changed = run_pipeline(pipeline(1), store=store, artifact_root=url)
    assert [r.status for r in changed.steps.values()] == ["cached", "complete"]
    statistics = changed.steps["count"].outputs["statistics"]
    assert statistics.uri.startswith(url)
    assert (statistics.path / "count.txt").read_text() == "3"
