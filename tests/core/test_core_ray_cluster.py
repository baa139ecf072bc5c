"""A real two-node Ray cluster on this machine (``ray start --head`` and a second
``ray start --address`` node, both on 127.0.0.1, no dashboard) with the artifact store in
an S3 bucket (moto's server on 127.0.0.1, through s3fs): a step that asks for the worker
node's resource runs there and publishes its files to the bucket itself; a step on the
head node reads them through its own working copy, and so does the driver. Each node has
a cache folder of its own, as separate machines would, and takes the bucket's options
from its environment. And an address where nothing listens fails fast with a clear error,
not a hang.

The processes the test starts are found by a marker in their environment and stopped by
pid (``ray stop`` would stop every Ray of this user on the machine)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from lockgate import Input, Output, Pipeline, Statistics, component, run_pipeline
from lockgate.cli.main import cli
from lockgate.core.fsspec_store import CACHE_ENV, MARKER, OPTIONS_ENV, FsspecArtifactStore
from lockgate.errors import ConfigError
from lockgate.metadata.store import SqlMetadataStore

# Token authentication, as a local Ray turns it on for its process anyway: set before Ray
# is imported, which reads it once (the nodes below use Ray's token, ~/.ray/auth_token).
os.environ.setdefault("RAY_AUTH_MODE", "token")
ray = pytest.importorskip("ray")

from ray import cloudpickle  # noqa: E402

from lockgate.core.runners.ray import RayRunner  # noqa: E402
from lockgate.core.runners.ray_connect import JOIN_TIMEOUT_ENV, join_timeout  # noqa: E402

cloudpickle.register_pickle_by_value(sys.modules[__name__])


BUCKET = "lockgate-cluster"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_address_fails_fast_with_a_clear_error() -> None:
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ConfigError, match=f"no Ray cluster reachable at {address}"):
        RayRunner(address, connect_timeout_s=3).start()
    assert time.monotonic() - started < 5


JOIN_NOT_RAY = """
import socket, sys, time
from lockgate.core.runners.ray import RayRunner
from lockgate.errors import ConfigError
with socket.socket() as listener:  # reachable, but it never answers as a Ray cluster
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    started = time.monotonic()
    try:
        RayRunner(f"127.0.0.1:{listener.getsockname()[1]}", **eval(sys.argv[1])).start()
    except ConfigError as exc:
        print(f"{time.monotonic() - started:.1f}", exc)
"""


@pytest.mark.parametrize(
    ("options", "env"),
    [("dict(join_timeout_s=3)", {}), ("dict()", {"LOCKGATE_RAY_JOIN_TIMEOUT_S": "3"})],
    ids=["argument", "environment"],
)
def test_a_port_that_is_not_rays_is_given_up_after_the_join_timeout(
    options: str, env: dict[str, str]
) -> None:
    # in a process of its own: the abandoned attempt keeps trying in the background; without
    # token authentication, which would fail at once on a machine that has no token yet
    inherited = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    done = subprocess.run(
        [sys.executable, "-c", JOIN_NOT_RAY, options], capture_output=True, text=True,
        timeout=60, env={**inherited, **env},
    )  # fmt: skip
    took, _, message = done.stdout.strip().partition(" ")
    assert "no Ray cluster could be joined there within 3 s" in message, done.stdout
    assert float(took) < 6


def test_ray_client_waits_longer_to_join_and_the_environment_overrides_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(JOIN_TIMEOUT_ENV, raising=False)
    assert join_timeout("127.0.0.1:6379") == 30
    assert join_timeout("ray://127.0.0.1:10001") == 180  # a server process per client
    monkeypatch.setenv(JOIN_TIMEOUT_ENV, "45")
    assert join_timeout("ray://127.0.0.1:10001") == join_timeout("127.0.0.1:6379") == 45
    for bad in ("soon", "0", "-5"):
        monkeypatch.setenv(JOIN_TIMEOUT_ENV, bad)
        with pytest.raises(ConfigError, match=f"{JOIN_TIMEOUT_ENV}='{bad}' is not a number"):
            join_timeout("127.0.0.1:6379")


def test_a_ray_client_address_without_ray_client_names_the_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as listener:  # something listens: the address is reachable
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"ray://127.0.0.1:{listener.getsockname()[1]}"
        monkeypatch.setitem(sys.modules, "grpc", None)  # Ray Client's gRPC, not installed
        with pytest.raises(ConfigError, match="a ray:// address needs Ray Client"):
            RayRunner(address).start()


def test_the_cli_says_so_in_one_line_and_a_hint(penguins_project: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        cli, ["run", "--project", str(penguins_project), "--runner", "ray", "--address", address]
    )
    assert result.exit_code != 0
    assert f"no Ray cluster reachable at {address}" in result.output
    assert "ray start --head" in result.output


# ``ray start`` on 127.0.0.1 only: Ray swaps 127.0.0.1 for the routable address (and then
# listens on every interface) unless told it is on one host, and it refuses a worker node
# on one host; this keeps the address a worker node was given.
RAY_START = (
    "import sys, ray._private.services as s; r = s.resolve_ip_for_localhost; "
    "s.resolve_ip_for_localhost = lambda h: h if h == '127.0.0.1' else r(h); "
    "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()"
)


def _ours(marker: str, temp: Path) -> list[int]:
    """The pids the cluster's ``ray start`` spawned: ``marker`` in their environment, or
    the cluster's temp folder among their open files (agents get a fresh environment)."""
    pids = []
    needle = f"LOCKGATE_TEST_RAY_CLUSTER={marker}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0") or any(
                os.readlink(fd).startswith(str(temp)) for fd in (entry / "fd").iterdir()
            ):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _stop(marker: str, temp: Path) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _ours(marker, temp):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 2
        while _ours(marker, temp) and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.fixture(scope="module")
def s3_options() -> Iterator[str]:
    """moto's S3 server in a thread on 127.0.0.1 with one bucket: the storage options
    (JSON) every node and the driver take from ``LOCKGATE_ARTIFACT_STORAGE_OPTIONS``."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **credentials)
    client.create_bucket(Bucket=BUCKET)
    client.close()
    client_kwargs = {"endpoint_url": endpoint, "region_name": "us-east-1"}
    yield json.dumps({"key": "testing", "secret": "testing", "client_kwargs": client_kwargs})
    server.stop()


@pytest.fixture(scope="module")
def caches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A cache folder (working copies, staging) per node and one for the driver."""
    root = tmp_path_factory.mktemp("caches")
    return {name: root / name for name in ("head", "worker", "driver")}


@pytest.fixture(scope="module")
def client_port() -> int:
    """The head node's Ray Client server port (``ray://127.0.0.1:<port>``)."""
    return free_port()


@pytest.fixture(scope="module")
def two_nodes(s3_options: str, caches: dict[str, Path], client_port: int) -> Iterator[str]:
    """A head node (1 CPU, resource ``head_node``) and a worker node (1 CPU, resource
    ``worker_node``), both on 127.0.0.1, with token authentication (this driver shows the
    same token); each node's environment names the bucket's options and its own cache."""
    marker = uuid.uuid4().hex
    temp = Path(f"/tmp/lg-ray-{marker[:8]}")  # short: Ray's socket paths have a length limit
    auth = {"RAY_AUTH_MODE": "token"}  # Ray's own token (~/.ray/auth_token), made if missing
    env = {**os.environ, **auth, "RAY_USAGE_STATS_ENABLED": "0", OPTIONS_ENV: s3_options}
    env["LOCKGATE_TEST_RAY_CLUSTER"] = marker
    port = free_port()
    address = f"127.0.0.1:{port}"
    start = [sys.executable, "-c", RAY_START, "start", "--node-ip-address", "127.0.0.1"]
    head = [*start, "--head", "--port", str(port), "--num-cpus", "1"]
    head += ["--include-dashboard=false", "--temp-dir", str(temp)]
    head += ["--resources", '{"head_node": 1}', "--ray-client-server-port", str(client_port)]
    worker = [*start, "--address", address, "--num-cpus", "1"]
    worker += ["--resources", '{"worker_node": 1}']
    with pytest.MonkeyPatch.context() as patch:
        for key, value in auth.items():
            patch.setenv(key, value)
        try:
            # a machine where Ray never ran has no token yet, and `ray start` makes none
            token = [sys.executable, "-c", RAY_START, "get-auth-token", "--generate"]
            subprocess.run(token, env=env, check=True, capture_output=True, timeout=120)
            subprocess.run(head, env={**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
                                      CACHE_ENV: str(caches["head"])},
                           check=True, capture_output=True, timeout=120)  # fmt: skip
            subprocess.run(worker, env={**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",
                                        CACHE_ENV: str(caches["worker"])},
                           check=True, capture_output=True, timeout=120)  # fmt: skip
            yield address
        finally:
            if ray.is_initialized():
                ray.shutdown()
            _stop(marker, temp)
            shutil.rmtree(temp, ignore_errors=True)


@component(resources={"worker_node": 1})
def on_the_worker(report: Output[Statistics]) -> None:
    import ray as worker_ray

    from lockgate.core.runners import current_runner

    node = worker_ray.get_runtime_context().get_node_id()
    Path(report.path, "where.txt").write_text(f"{node} {os.getpid()}")
    # shards write into this step's output folder, which exists on this node only
    folder = str(report.path)

    def shard(index: int) -> str:
        Path(folder, f"shard-{index}.txt").write_text(str(index))
        return str(worker_ray.get_runtime_context().get_node_id())

    shard_nodes = current_runner().map(shard, [0, 1, 2])
    report.properties.update(node=node, pid=os.getpid(), shard_nodes=shard_nodes)


@component(resources={"head_node": 1})
def on_the_head(report: Input[Statistics], seen: Output[Statistics]) -> None:
    import ray as worker_ray

    node = worker_ray.get_runtime_context().get_node_id()
    where = Path(report.path, "where.txt").read_text()
    Path(seen.path, "seen.txt").write_text(where)
    seen.properties.update(node=node, read_from=str(report.path), where=where)


def test_a_step_runs_on_the_worker_node_and_publishes_what_the_driver_reads(
    two_nodes: str,
    s3_options: str,
    caches: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(OPTIONS_ENV, s3_options)
    monkeypatch.setenv(CACHE_ENV, str(caches["driver"]))
    root = f"s3://{BUCKET}/cluster-{uuid.uuid4().hex[:8]}"
    runner = RayRunner(two_nodes).start()
    try:
        deadline = time.monotonic() + 60
        while len([n for n in ray.nodes() if n["Alive"]]) < 2:
            assert time.monotonic() < deadline, "the worker node never joined"
            time.sleep(0.5)
        nodes = {n["NodeID"]: n for n in ray.nodes() if n["Alive"]}
        (worker_node,) = [i for i, n in nodes.items() if "worker_node" in n["Resources"]]
        (head_node,) = [i for i in nodes if i != worker_node]
        store = SqlMetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")
        try:
            worker_step = on_the_worker()
            pipeline = Pipeline(
                "cluster", [worker_step, on_the_head(report=worker_step.outputs.report)]
            )
            result = run_pipeline(
                pipeline, store=store, artifact_root=root, project_dir=tmp_path, runner=runner
            )
            assert result.ok, result.error
            report = result.steps["on_the_worker"].outputs["report"]
            assert report.properties["node"] == worker_node != head_node
            assert report.properties["shard_nodes"] == [worker_node] * 3  # beside their step
            assert report.properties["pid"] != os.getpid()
            expected = f"{worker_node} {report.properties['pid']}"
            registered = {a.uri: a for a in store.artifacts_of_type("Statistics")}
            assert registered[report.uri].fingerprint == report.fingerprint
            assert report.uri.startswith(f"{root}/cluster/on_the_worker/report/")

            # the worker uploaded the files; its own copy stays in its node's cache
            bucket = FsspecArtifactStore(f"s3://{BUCKET}", cache_dir=caches["driver"])
            keys = bucket.fs.find(report.uri.removeprefix("s3://"))
            names = sorted(k.rsplit("/", 1)[1] for k in keys)
            assert names == sorted(
                [MARKER, "where.txt", "shard-0.txt", "shard-1.txt", "shard-2.txt"]
            )
            assert (caches["worker"] / "objects" / report.fingerprint / "where.txt").is_file()

            # the head node read it through a working copy of its own, from the bucket
            seen = result.steps["on_the_head"].outputs["seen"]
            assert seen.properties["node"] == head_node
            assert seen.properties["where"] == expected
            assert seen.properties["read_from"] == str(
                caches["head"] / "objects" / report.fingerprint
            )

            # and so does the driver, which never had the files
            assert not (caches["driver"] / "objects" / report.fingerprint).exists()
            read = registered[report.uri]
            assert (read.path / "where.txt").read_text() == expected
            assert read.path == caches["driver"] / "objects" / report.fingerprint
        finally:
            store.close()
    finally:
        runner.shutdown()


@component(resources={"worker_node": 1}, retries=1)
def dies_once_on_the_worker(result: Output[Statistics], *, marker: str) -> None:
    leftovers = sorted(p.name for p in result.path.iterdir())
    if not Path(marker).exists():
        Path(result.path, "half.json").write_text("{")
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    Path(result.path, "whole.json").write_text("{}")
    result.properties.update(leftovers=leftovers, pid=os.getpid())


def test_a_step_retried_after_its_worker_died_starts_from_empty_outputs_in_the_bucket(
    two_nodes: str,
    s3_options: str,
    caches: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(OPTIONS_ENV, s3_options)
    monkeypatch.setenv(CACHE_ENV, str(caches["driver"]))
    root = f"s3://{BUCKET}/retried-{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "first-attempt.pid"
    runner = RayRunner(two_nodes).start()
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")
    try:
        pipeline = Pipeline("retried", [dies_once_on_the_worker(marker=str(marker))])
        result = run_pipeline(
            pipeline, store=store, artifact_root=root, project_dir=tmp_path, runner=runner
        )
        assert result.ok, result.error
        (registered,) = store.artifacts_of_type("Statistics")
        assert registered.properties["leftovers"] == []  # the dead attempt's file is not here
        assert registered.properties["pid"] != int(marker.read_text())
        bucket = FsspecArtifactStore(f"s3://{BUCKET}", cache_dir=caches["driver"])
        keys = bucket.fs.find(root.removeprefix("s3://"))
        assert sorted(k.rsplit("/", 1)[1] for k in keys) == [MARKER, "whole.json"]
    finally:
        store.close()
        runner.shutdown()


def test_the_demo_through_ray_client_gives_the_local_runners_fingerprints(
    two_nodes: str, client_port: int, penguins_project: Path, tmp_path: Path
) -> None:
    """``lockgate run --runner ray --address ray://...``: a driver outside the cluster (a
    process of its own, as on a laptop), its steps run on the cluster's nodes; the artifacts
    are those of the local runner, byte for byte."""
    twin = tmp_path / "twin"
    shutil.copytree(penguins_project, twin)
    local = CliRunner().invoke(cli, ["run", "--project", str(penguins_project)])
    assert local.exit_code == 0, local.output
    address = f"ray://127.0.0.1:{client_port}"
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
    command = [sys.executable, "-m", "lockgate.cli.main", "run", "--runner", "ray"]
    for _ in range(2):  # Ray's own per-client server may fail to start on a busy machine
        done = subprocess.run(
            [*command, "--address", address], cwd=twin, env=env, capture_output=True,
            text=True, timeout=400,
        )  # fmt: skip
        if "Starting Ray client server failed" not in done.stderr:
            break
    assert done.returncode == 0, done.stdout + done.stderr + _client_server_logs()
    assert "Pushed: yes" in done.stdout
    fingerprints = {}
    for project in (penguins_project, twin):
        store = SqlMetadataStore(f"sqlite:///{project / '.lockgate/metadata.db'}")
        try:
            fingerprints[project] = {
                (name, a.fingerprint)
                for name in ("Examples", "Statistics", "Schema", "TransformGraph", "Model")
                for a in store.artifacts_of_type(name)
            }
            runs = store.list_runs(limit=5)
            assert runs[0].status == "complete"  # the newest (a join that failed is kept)
        finally:
            store.close()
    assert fingerprints[twin] == fingerprints[penguins_project]
    assert len(fingerprints[twin]) == 5


def _client_server_logs() -> str:
    """The tails of the head node's Ray Client server logs, to say why a join failed."""
    tails = []
    for log in sorted(Path("/tmp").glob("lg-ray-*/session_latest/logs/ray_client_server*")):
        tails.append(f"\n--- {log}\n{log.read_text(errors='replace')[-1500:]}")
    return "".join(tails)
