"""The fsspec artifact store against a real S3-protocol server (moto's, on 127.0.0.1,
through s3fs: the code path of a team's S3 or MinIO bucket), and on memory:// and file://.

The penguins demo runs with its artifacts in a bucket and gives the fingerprints of the
same run on the local store; the second run is served from the cache; the pushed model
loads through a working copy downloaded from the bucket. A kill between the upload and
the marker leaves nothing registered, a prefix no reader takes, and the next run sweeps it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import free_port

from lockgate import Examples, Output, Pipeline, component, run_pipeline
from lockgate.cli.project import load_pipeline
from lockgate.core.artifact_store import LocalArtifactStore, artifact_store_for, local_copy
from lockgate.core.fsspec_store import MARKER, FsspecArtifactStore
from lockgate.errors import ArtifactStoreError, ConfigError
from lockgate.metadata.registry import Registry
from lockgate.metadata.store import SqlMetadataStore

BUCKET = "lockgate-test"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server in a thread on 127.0.0.1, with one bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    client.close()
    yield endpoint
    server.stop()


@pytest.fixture
def s3_env(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment a user sets for the bucket; also set here, for the working copies
    that code outside a run (the server's loading) makes."""
    env = {
        "LOCKGATE_ARTIFACT_STORAGE_OPTIONS": json.dumps(
            {
                "key": "testing",
                "secret": "testing",
                "client_kwargs": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
            }
        ),
        "LOCKGATE_ARTIFACT_CACHE": str(tmp_path / "cache"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _bucket(env: dict[str, str]) -> FsspecArtifactStore:
    return FsspecArtifactStore(f"s3://{BUCKET}", environ=env)


def _fingerprints(result: object) -> dict[str, str | None]:
    return {
        f"{step}.{name}": artifact.fingerprint
        for step, outcome in result.steps.items()  # type: ignore[attr-defined]
        for name, artifact in outcome.outputs.items()
    }


def test_the_demo_on_s3_gives_the_local_fingerprints_caches_and_serves_its_push(
    penguins_project: Path,
    tmp_path: Path,
    s3_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local_project = tmp_path / "local-project"
    shutil.copytree(penguins_project, local_project)
    local_store = SqlMetadataStore(f"sqlite:///{tmp_path / 'local.db'}")
    local = run_pipeline(
        load_pipeline(local_project / "pipeline.py"),
        store=local_store,
        artifact_root=local_project / ".lockgate" / "artifacts",
        project_dir=local_project,
    )
    local_store.close()
    assert local.ok, local.error

    root = f"s3://{BUCKET}/teams/penguins"
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")
    try:
        first = run_pipeline(
            load_pipeline(penguins_project / "pipeline.py"),
            store=store,
            artifact_root=root,
            project_dir=penguins_project,
        )
        assert first.ok, first.error
        assert _fingerprints(first) == _fingerprints(local)
        bucket = _bucket(s3_env)
        markers = set(bucket.fs.find(f"{BUCKET}/teams/penguins"))
        for step, outcome in first.steps.items():
            for artifact in outcome.outputs.values():
                assert artifact.uri.startswith(f"{root}/penguins/{step}/"), artifact.uri
                assert f"{artifact.uri.removeprefix('s3://')}/{MARKER}" in markers
                assert artifact.fingerprint is not None
        assert not (penguins_project / ".lockgate" / "artifacts").exists()

        # The first run wrote the project's curated schema.yaml: infer_schema now reads it
        # (same schema, same fingerprint) and everything after it comes from the cache.
        again = run_pipeline(
            load_pipeline(penguins_project / "pipeline.py"),
            store=store,
            artifact_root=root,
            project_dir=penguins_project,
        )
        assert again.ok, again.error
        statuses = {name: r.status for name, r in again.steps.items()}
        assert statuses.pop("infer_schema") == "complete"
        assert "schema.yaml" in str(again.steps["infer_schema"].reason)
        assert set(statuses.values()) == {"cached"}
        assert _fingerprints(again) == _fingerprints(first)
        third = run_pipeline(
            load_pipeline(penguins_project / "pipeline.py"),
            store=store,
            artifact_root=root,
            project_dir=penguins_project,
        )
        assert {r.status for r in third.steps.values()} == {"cached"}

        # The server's path: a fresh machine's cache, the version from the registry.
        monkeypatch.setenv("LOCKGATE_ARTIFACT_CACHE", str(tmp_path / "server-cache"))
        from lockgate.serving.reload import load_version
        from lockgate.serving.servable import read_samples

        version = Registry(store).get("penguins")
        assert version.artifact.uri.startswith(root)
        servable = load_version("penguins", version)
        assert version.artifact.path.is_relative_to(tmp_path / "server-cache")
        samples = read_samples(version.artifact.path, servable.transform)
        answers = servable.predict(samples)
        assert all(len(v) == len(next(iter(samples.values()))) for v in answers.values())
    finally:
        store.close()


CRASHING_UPLOAD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from lockgate import Examples, Output, Pipeline, component, run_pipeline
    from lockgate.core.fsspec_store import MARKER, FsspecArtifactStore
    from lockgate.metadata.store import SqlMetadataStore

    @component
    def make(examples: Output[Examples]) -> None:
        Path(examples.path, "rows.txt").write_text(os.environ["ROWS"])

    store = FsspecArtifactStore(sys.argv[2])
    if os.environ.get("KILL") == "1":
        pipe_file = store.fs.pipe_file
        def killed_before_marker(path, *args, **kwargs):
            if path.endswith(MARKER):
                os.kill(os.getpid(), signal.SIGKILL)
            return pipe_file(path, *args, **kwargs)
        store.fs.pipe_file = killed_before_marker
    result = run_pipeline(
        Pipeline("crash", [make()]), store=SqlMetadataStore(sys.argv[1]), artifact_root=store
    )
    print(result.status)
    """
)


def test_a_kill_between_upload_and_marker_registers_nothing_and_the_next_run_sweeps_it(
    tmp_path: Path, s3_env: dict[str, str]
) -> None:
    script = tmp_path / "crash.py"
    script.write_text(CRASHING_UPLOAD)
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    SqlMetadataStore(url).close()
    root = f"s3://{BUCKET}/crash"
    env = {**os.environ, **s3_env, "ROWS": "1\n2\n"}
    killed = subprocess.run(
        [sys.executable, str(script), url, root], env={**env, "KILL": "1"}, timeout=120
    )
    assert killed.returncode == -signal.SIGKILL

    bucket = _bucket(s3_env)
    (half,) = bucket.fs.find(f"{BUCKET}/crash")
    assert half.endswith("/rows.txt")  # uploaded, never marked
    store = SqlMetadataStore(url)
    try:
        assert store.artifacts_of_type("Examples") == []
        uri = "s3://" + half.rsplit("/", 1)[0]
        assert not store.is_registered(uri)
        with pytest.raises(ArtifactStoreError, match="is not published: it has no"):
            bucket.local_copy(uri)
    finally:
        store.close()

    done = subprocess.run(
        [sys.executable, str(script), url, root],
        env={**env, "ROWS": "3\n"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "complete"
    bucket.fs.invalidate_cache()
    files = bucket.fs.find(f"{BUCKET}/crash")
    assert half not in files  # swept: the dead session published it, nobody registered it
    assert sorted(Path(f).name for f in files) == [MARKER, "rows.txt"]


def test_a_step_that_fails_or_whose_registration_fails_leaves_nothing_in_the_bucket(
    tmp_path: Path, s3_env: dict[str, str]
) -> None:
    def refuse(context: object, outputs: object, params: object, transaction: object) -> None:
        raise RuntimeError("the store refused the commit")

    @component(on_publish=refuse)
    def refused(examples: Output[Examples]) -> None:
        Path(examples.path, "rows.txt").write_text("1\n")

    @component
    def broken(examples: Output[Examples]) -> None:
        Path(examples.path, "rows.txt").write_text("1\n")
        raise ValueError("half written")

    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")
    bucket = _bucket(s3_env)
    try:
        for step, message in ((refused(), "refused the commit"), (broken(), "half written")):
            result = run_pipeline(
                Pipeline("failing", [step]), store=store, artifact_root=f"s3://{BUCKET}/failing"
            )
            assert result.status == "failed"
            assert message in str(result.error)
        bucket.fs.invalidate_cache()
        assert bucket.fs.find(f"{BUCKET}/failing") == []
        assert store.artifacts_of_type("Examples") == []
        assert list((tmp_path / "cache" / ".tmp").rglob("*.txt")) == []
    finally:
        store.close()


@pytest.mark.parametrize("scheme", ["memory", "file"])
def test_a_working_copy_is_verified_cached_by_fingerprint_and_refuses_changed_files(
    scheme: str, tmp_path: Path
) -> None:
    root = f"memory://lockgate-{tmp_path.name}" if scheme == "memory" else tmp_path.as_uri()
    env = {"LOCKGATE_ARTIFACT_CACHE": str(tmp_path / "cache")}
    writer = FsspecArtifactStore(root, environ=env)
    staging = writer.staging_dir("s", "out")
    (staging / "sub").mkdir()
    (staging / "sub" / "a.txt").write_text("a")
    from lockgate.core.fingerprint import path_fingerprint

    fingerprint = path_fingerprint(staging)
    uri = writer.publish(staging, writer.uri_for("p", "s", "out", "1"), fingerprint=fingerprint)
    writer.close()
    assert writer.exists(uri) and not staging.exists()

    reader = FsspecArtifactStore(root, environ={"LOCKGATE_ARTIFACT_CACHE": str(tmp_path / "r")})
    copy = reader.local_copy(uri, fingerprint)
    assert (copy / "sub" / "a.txt").read_text() == "a"
    assert copy == tmp_path / "r" / "objects" / fingerprint
    assert reader.local_copy(uri, fingerprint) == copy  # reused, not downloaded again

    path = reader._path(uri)
    reader.fs.pipe_file(f"{path}/sub/a.txt", b"changed")
    fresh = FsspecArtifactStore(root, environ={"LOCKGATE_ARTIFACT_CACHE": str(tmp_path / "f")})
    with pytest.raises(ArtifactStoreError, match="downloaded files have fingerprint"):
        fresh.local_copy(uri)
    with pytest.raises(ArtifactStoreError, match="the metadata store registered"):
        fresh.local_copy(uri, "0" * 64)
    assert [p.name for p in (tmp_path / "f" / "objects").iterdir()] == []


def test_a_root_picks_its_store_and_a_missing_backend_names_the_extra(tmp_path: Path) -> None:
    assert isinstance(artifact_store_for(tmp_path), LocalArtifactStore)
    assert isinstance(artifact_store_for(tmp_path.as_uri()), LocalArtifactStore)
    assert local_copy(str(tmp_path)) == tmp_path
    with pytest.raises(ConfigError, match=r'pip install "lockgate\[gcs\]"|gcsfs') as info:
        artifact_store_for("gs://bucket/artifacts", environ={})
    assert info.value.hint == 'pip install "lockgate[gcs]"'
    with pytest.raises(ConfigError, match="knows no nosuch:// file system"):
        artifact_store_for("nosuch://bucket", environ={})
    with pytest.raises(ConfigError, match="LOCKGATE_ARTIFACT_STORAGE_OPTIONS is not JSON"):
        artifact_store_for("memory://x", environ={"LOCKGATE_ARTIFACT_STORAGE_OPTIONS": "{"})


def test_lockgate_run_and_show_with_the_artifact_root_in_a_bucket(
    penguins_project: Path, tmp_path: Path, s3_env: dict[str, str]
) -> None:
    """The command line, as a team sets it: LOCKGATE_ARTIFACT_ROOT is a URL."""
    from support import lockgate

    env = {**os.environ, **s3_env, "LOCKGATE_ARTIFACT_ROOT": f"s3://{BUCKET}/cli"}
    ran = lockgate("run", cwd=penguins_project, env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "Pushed: yes, model 'penguins' version 1" in ran.stdout
    assert not (penguins_project / ".lockgate" / "artifacts").exists()
    store = SqlMetadataStore(f"sqlite:///{penguins_project / '.lockgate' / 'metadata.db'}")
    try:
        (statistics,) = store.artifacts_of_type("Statistics")
    finally:
        store.close()
    assert statistics.uri.startswith(f"s3://{BUCKET}/cli/")
    fresh = {**env, "LOCKGATE_ARTIFACT_CACHE": str(tmp_path / "another-machine")}
    shown = lockgate("show", str(statistics.id), "--json", cwd=penguins_project, env=fresh)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert json.loads(shown.stdout)["uri"] == statistics.uri


@pytest.mark.parametrize(
    "name", ["../../escaped.txt", "/tmp/escaped.txt", "sub/../../escaped.txt", ""]
)
def test_a_marker_naming_a_file_outside_the_artifact_is_refused_before_any_download(
    name: str, tmp_path: Path
) -> None:
    """An attacker who can write to the bucket hand-writes a marker whose file list climbs
    out of the working copy; the reader refuses it and writes nothing outside its cache."""
    root = tmp_path.as_uri() + "/bucket"
    writer = FsspecArtifactStore(root, environ={"LOCKGATE_ARTIFACT_CACHE": str(tmp_path / "w")})
    staging = writer.staging_dir("s", "out")
    (staging / "a.txt").write_text("a")
    from lockgate.core.fingerprint import path_fingerprint

    fingerprint = path_fingerprint(staging)
    uri = writer.publish(staging, writer.uri_for("p", "s", "out", "1"), fingerprint=fingerprint)
    writer.close()
    path = writer._path(uri)
    writer.fs.pipe_file(f"{path}/../../escaped.txt", b"payload")  # where the name points
    marker = {"format": 1, "fingerprint": fingerprint, "files": {name: 7}}
    writer.fs.pipe_file(f"{path}/{MARKER}", json.dumps(marker).encode())

    cache = tmp_path / "reader-cache" / "deep" / "er"
    reader = FsspecArtifactStore(root, environ={"LOCKGATE_ARTIFACT_CACHE": str(cache)})
    with pytest.raises(ArtifactStoreError, match="not a path inside the artifact; refused"):
        reader.local_copy(uri, fingerprint)
    written = [p for p in tmp_path.rglob("escaped.txt") if "bucket" not in p.parts]
    assert written == []
    assert not (cache / "objects").exists() or list((cache / "objects").iterdir()) == []
