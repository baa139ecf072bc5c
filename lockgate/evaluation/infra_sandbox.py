"""The sandbox infra-validation serves a candidate in: a registry of its own and a real
``lockgate serve`` process.

The candidate is packaged by push's own code (``package_pushed``) into a temporary project
with a fresh SQLite store and artifact root, registered there as the production version of
its name, and served by a ``lockgate serve`` process on 127.0.0.1 and a free port, forked
by the warm server zygote (``server_zygote``: it ends with this process, even on kill -9). The
project's store, registry and servers are never touched: the child gets no ``LOCKGATE_*``
variable of ours, only the temporary project. The server is always stopped (terminate, then
kill after a grace period), also when the caller is interrupted or the interpreter exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockgate.core.artifacts import Model, PushedModel, TransformGraph
from lockgate.evaluation.server_zygote import ServerProcess

#: Seconds a terminated server has to exit before it is killed.
STOP_GRACE_S = 5.0

_live: set[ServerProcess] = set()
_live_lock = threading.Lock()


@dataclass
class Readiness:
    """How starting the server went: ready or not, how long it took, and why not."""

    ready: bool
    load_time_s: float
    reason: str | None = None


@dataclass
class Sandbox:
    """A temporary project holding one registered candidate, and the server serving it."""

    folder: Path
    model_name: str
    framework: str | None = None
    port: int = 0
    process: ServerProcess | None = None
    started_at: float = 0.0
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.folder / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start ``lockgate serve`` on the sandbox project; returns at once (see ``wait``)."""
        self.port = free_port()
        from lockgate.evaluation.server_zygote import zygote

        argv = [
            "lockgate",
            "serve",
            "--project",
            str(self.folder),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--model",
            self.model_name,
            "--log-sample-rate",
            "0",
        ]
        self.started_at = time.perf_counter()
        self.process = zygote().spawn(
            argv,
            cwd=str(self.folder),
            env=child_environment(),
            log=str(self.log_path),
            framework=self.framework,
        )
        with _live_lock:
            _live.add(self.process)

    def wait(self, max_loading_time: float) -> Readiness:
        """Poll ``/v2/health/ready`` until it answers 200, the server exits, or
        ``max_loading_time`` seconds pass since the start."""
        import httpx

        assert self.process is not None, "start() first"
        deadline = self.started_at + max_loading_time
        with httpx.Client(timeout=1.0) as client:
            while True:
                code = self.process.poll()
                elapsed = time.perf_counter() - self.started_at
                if code is not None:
                    return Readiness(
                        False,
                        elapsed,
                        f"the server exited (code {code}) before it was ready, so the model"
                        f" does not load in lockgate serve: {self.log_tail()}",
                    )
                try:
                    if client.get(f"{self.url}/v2/health/ready").status_code == 200:
                        return Readiness(True, time.perf_counter() - self.started_at)
                except httpx.HTTPError:
                    pass
                if time.perf_counter() >= deadline:
                    return Readiness(
                        False,
                        elapsed,
                        f"the server did not become ready within max_loading_time"
                        f" {max_loading_time:g} s: {self.log_tail() or 'it printed nothing'}",
                    )
                time.sleep(0.02)

    def peak_rss_mb(self) -> float | None:
        """The server's peak resident memory so far (None where it cannot be read)."""
        if self.process is None or self.process.poll() is not None:
            return None
        return peak_rss_mb(self.process.pid)

    def log_tail(self, chars: int = 600) -> str:
        """The end of what the server printed, on one line."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
        return " | ".join(lines)[-chars:]

    def stop(self) -> None:
        """Terminate the server, kill it after ``STOP_GRACE_S``; idempotent."""
        if self.process is not None:
            stop_process(self.process)


def stop_process(process: ServerProcess) -> None:
    try:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_GRACE_S)
    finally:
        with _live_lock:
            _live.discard(process)


@atexit.register
def _stop_all() -> None:  # the interpreter ends while a validation runs: leave no server
    with _live_lock:
        processes = list(_live)
    for process in processes:
        stop_process(process)


def make_sandbox(
    model: Model, transform: TransformGraph, model_name: str, *, root: Path | None = None
) -> Sandbox:
    """A temporary project whose fresh store has the candidate as ``model_name``'s
    production version, packaged as push packages it. The caller removes ``folder``."""
    folder = Path(tempfile.mkdtemp(prefix="lockgate-infra-", dir=root))
    try:
        (folder / "lockgate.toml").write_text(
            f'[project]\nname = "infra-validation"\n\n'
            f"[serve]\nlog_sample_rate = 0\npoll_interval_s = 3600\nmodels = [{model_name!r}]\n",
            encoding="utf-8",
        )
        _register_candidate(folder, model, transform, model_name)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Sandbox(folder, model_name, model.properties.get("framework"))


def _register_candidate(
    folder: Path, model: Model, transform: TransformGraph, model_name: str
) -> None:
    from lockgate.core.fingerprint import path_fingerprint
    from lockgate.metadata.registry import PRODUCTION, Registry
    from lockgate.metadata.store import SqlMetadataStore
    from lockgate.serving.components import package_pushed
    from lockgate.settings import Settings

    settings = Settings.load(folder, environ={})
    target = Path(settings.resolved_artifact_root) / "infra_validate" / "pushed_model"
    target.mkdir(parents=True)
    properties = package_pushed(model, transform, target, model_name)
    store = SqlMetadataStore(settings.resolved_store_url)
    try:
        run_id = store.start_run("infra-validation", {"model": model.uri})
        execution = store.start_execution(
            run_id,
            step="push",
            component="push",
            cache_key=None,
            code_fingerprint=None,
            params={},
            inputs={},
        )
        pushed = PushedModel(
            uri=str(target), properties=properties, fingerprint=path_fingerprint(target)
        )
        registry = Registry(store)

        def register(conn: Any) -> None:
            registry.register_within(
                conn,
                model_name,
                pushed,
                blessed=True,
                properties={"model_fingerprint": properties["model_fingerprint"]},
                alias=PRODUCTION,
                reason="infra-validation candidate",
            )

        store.publish_execution(execution, {"pushed_model": pushed}, within=register)
        store.finish_run(run_id, "complete")
    finally:
        store.close()


def child_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Our environment without ``LOCKGATE_*`` (so no store, token or port of the project
    reaches the sandbox), with our import path, so that a transform's row_function in a
    project module imports in the server as it does here."""
    environ = dict(os.environ if environ is None else environ)
    env = {k: v for k, v in environ.items() if not k.startswith("LOCKGATE_")}
    paths = [p for p in sys.path if p and Path(p).is_dir()]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory of ``pid`` in MiB: Linux's VmHWM; elsewhere psutil's peak
    working set where it has one, else None."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    try:
        import psutil
    except ImportError:  # not installed: the peak is not measured here (said in the checks)
        return None
    info: Any = psutil.Process(pid).memory_info()
    peak = getattr(info, "peak_wset", None)  # Windows only; RSS elsewhere is not a peak
    return None if peak is None else float(peak) / 2**20
