"""The servers of the serving benchmark: how each is set up, started, asked and read.

Every server is started as a subprocess pinned to one core with ``taskset`` (its workers
inherit the pin), in its own process group so that stopping it stops its workers too.
Each is asked for the same rows in two V2 layouts where it takes them (``LAYOUTS``):

* ``features``: one ``[n]`` FP64 tensor per feature (``f0`` .. ``f19``, what ``lockgate
  models import --features`` declares); MLServer reads it with the request parameter
  ``content_type: pd`` (a pandas DataFrame, its codec for named columns);
* ``matrix``: one ``[n, 20]`` FP64 tensor;
* ``v1`` (lockgate only): TF-Serving's ``{"instances": [{"f0": ..}, ..]}`` on ``:predict``.

lockgate and the floor are asked for the ``predicted`` output; MLServer answers its
runtime's ``predict`` output; MLflow takes ``/invocations`` with ``{"inputs": [[...]]}``
(the matrix layout only) and answers ``predictions``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from serving_model import FEATURES, BenchModel, save_mlflow_model, save_mlserver_repository

HERE = Path(__file__).resolve().parent
MLSERVER_VENV = HERE / ".venv-mlserver"
MLFLOW_VENV = HERE / ".venv-mlflow"
LAYOUTS = ("features", "matrix")
#: MLServer as a user chasing speed deploys it: inference in the HTTP process, no debug log
MLSERVER_TUNED = {"MLSERVER_PARALLEL_WORKERS": "0", "MLSERVER_DEBUG": "false"}

#: (path, body) of one request, or None where the server does not take the layout
Request = tuple[str, bytes] | None


@dataclass
class Server:
    """One server to measure: the command that starts it and its request formats."""

    name: str
    command: list[str]
    port: int
    ready_path: str
    request: Callable[[np.ndarray, str], Request]
    decode: Callable[[bytes], list[str]]
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- request formats ------------------------------------------------------------------------


def v2_body(X: np.ndarray, layout: str, *, outputs: list[str] | None = None) -> bytes:
    """A V2 request in ``layout``; ``outputs`` names the outputs asked for."""
    if layout == "matrix":
        inputs = [
            {"name": "input-0", "datatype": "FP64", "shape": list(X.shape),
             "data": X.reshape(-1).tolist()}
        ]  # fmt: skip
    else:
        inputs = [
            {"name": name, "datatype": "FP64", "shape": [len(X)], "data": X[:, i].tolist()}
            for i, name in enumerate(FEATURES)
        ]
    doc: dict[str, object] = {"inputs": inputs}
    if outputs is not None:
        doc["outputs"] = [{"name": name} for name in outputs]
    return json.dumps(doc).encode()


def lockgate_request(name: str) -> Callable[[np.ndarray, str], Request]:
    def request(X: np.ndarray, layout: str) -> Request:
        if layout == "v1":
            rows = [dict(zip(FEATURES, row.tolist(), strict=True)) for row in X]
            return f"/v1/models/{name}:predict", json.dumps({"instances": rows}).encode()
        return f"/v2/models/{name}/infer", v2_body(X, layout, outputs=["predicted"])

    return request


def floor_request(name: str) -> Callable[[np.ndarray, str], Request]:
    def request(X: np.ndarray, layout: str) -> Request:
        if layout == "v1":
            return None
        return f"/v2/models/{name}/infer", v2_body(X, layout)

    return request


def v2_answer(output: str) -> Callable[[bytes], list[str]]:
    def decode(body: bytes) -> list[str]:
        outputs = {o["name"]: o for o in json.loads(body)["outputs"]}
        return [str(v) for v in outputs[output]["data"]]

    return decode


def mlserver_request(name: str) -> Callable[[np.ndarray, str], Request]:
    def request(X: np.ndarray, layout: str) -> Request:
        if layout == "v1":
            return None
        body = json.loads(v2_body(X, layout))
        if layout == "features":
            body["parameters"] = {"content_type": "pd"}
        return f"/v2/models/{name}/infer", json.dumps(body).encode()

    return request


def mlflow_request(X: np.ndarray, layout: str) -> Request:
    if layout != "matrix":
        return None
    return "/invocations", json.dumps({"inputs": X.tolist()}).encode()


def mlflow_answer(body: bytes) -> list[str]:
    return [str(v) for v in json.loads(body)["predictions"]]


# --- set-up ---------------------------------------------------------------------------------


def lockgate_project(model_file: Path, name: str, folder: Path) -> Path:
    """A fresh lockgate project (own SQLite store) with the model imported and promoted
    (its framework told by the file's suffix: .skops, .json, .safetensors)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lockgate.toml").write_text('[project]\nname = "serving-bench"\n')
    cli = [sys.executable, "-m", "lockgate.cli.main"]
    steps = [
        ["models", "import", str(model_file), "--name", name, "--features",
         ",".join(FEATURES), "--bless", "--reason", "serving benchmark"],
        ["models", "promote", name, "1"],
    ]  # fmt: skip
    for step in steps:
        done = subprocess.run(
            [*cli, *step, "--project", str(folder)], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"lockgate {' '.join(step[:2])} failed: {done.stderr.strip()}")
    return folder


def lockgate_server(
    project: Path, name: str, *, batching: bool = True, env: dict[str, str] | None = None
) -> Server:
    port = free_port()
    settings = {} if batching else {"LOCKGATE_SERVE_BATCH_MAX_SIZE": "1"}
    return Server(
        name="lockgate" if batching else "lockgate-nobatch",
        command=[sys.executable, "-m", "lockgate.cli.main", "serve", "--project", str(project),
                 "--host", "127.0.0.1", "--port", str(port)],
        port=port,
        ready_path="/v2/health/ready",
        request=lockgate_request(name),
        decode=v2_answer("predicted"),
        env={**settings, **(env or {})},
        note="default [serve] settings (request log on, 10 %)"
        if batching else "serve batch_max_size = 1",
    )  # fmt: skip


def floor_server(joblib_file: Path, name: str) -> Server:
    """The bare Starlette + orjson app of ``serving_floor.py`` (uvloop, httptools)."""
    port = free_port()
    return Server(
        name="floor",
        command=[sys.executable, str(HERE / "serving_floor.py"), str(joblib_file), name,
                 str(port)],
        port=port,
        ready_path="/v2/health/ready",
        request=floor_request(name),
        decode=v2_answer("predicted"),
        note="Starlette + orjson, predict inline on the event loop, uvloop + httptools",
    )  # fmt: skip


def mlserver_server(
    model: BenchModel, lockgate_file: Path, folder: Path, *, tuned: bool
) -> Server | str:
    """MLServer, tuned (``MLSERVER_TUNED``) or with its defaults, or why it cannot run."""
    binary = MLSERVER_VENV / "bin" / "mlserver"
    if not binary.exists():
        return f"{MLSERVER_VENV.relative_to(HERE.parent)} not found (see bench/README.md)"
    ports = {"http": free_port(), "grpc": free_port(), "metrics": free_port()}
    save_mlserver_repository(model, lockgate_file, folder, ports=ports)
    runtime = {
        "sklearn": "sklearn runtime",
        "xgboost": "XGBoost runtime",
        "torch_mlp": "custom runtime bench/serving_mlserver_torch.py",
    }[model.kind]
    env = {"PATH": f"{MLSERVER_VENV / 'bin'}:{os.environ.get('PATH', '')}"}
    if tuned:
        env.update(MLSERVER_TUNED)
    settings = " ".join(f"{k}={v}" for k, v in MLSERVER_TUNED.items())
    return Server(
        name="mlserver-tuned" if tuned else "mlserver",
        command=[str(binary), "start", str(folder)],
        port=ports["http"],
        ready_path=f"/v2/models/{model.name}/ready",
        request=mlserver_request(model.name),
        decode=v2_answer("predict"),
        cwd=folder,
        env=env,
        note=f"{runtime}, " + (settings if tuned else "default settings (an inference worker "
                               "process, debug log)"),
    )  # fmt: skip


def mlflow_server(joblib_file: Path, folder: Path) -> Server | str:
    """``mlflow models serve --env-manager local`` with its default workers, or why not."""
    python = MLFLOW_VENV / "bin" / "python"
    binary = MLFLOW_VENV / "bin" / "mlflow"
    if not binary.exists():
        return f"{MLFLOW_VENV.relative_to(HERE.parent)} not found (see bench/README.md)"
    model_dir = save_mlflow_model(joblib_file, folder / "mlflow-model", python)
    port = free_port()
    return Server(
        name="mlflow",
        command=[str(binary), "models", "serve", "-m", str(model_dir), "--env-manager",
                 "local", "-h", "127.0.0.1", "-p", str(port)],
        port=port,
        ready_path="/ping",
        request=mlflow_request,
        decode=mlflow_answer,
        cwd=folder,
        env={"PATH": f"{MLFLOW_VENV / 'bin'}:{os.environ.get('PATH', '')}",
             "MLFLOW_TRACKING_URI": f"file://{folder / 'mlruns'}"},
        note="mlflow models serve defaults",
    )  # fmt: skip


# --- running --------------------------------------------------------------------------------


class Running:
    """A started server: ``stop()`` ends its whole process group."""

    def __init__(self, server: Server, core: int | None, log: Path) -> None:
        self.server = server
        self.log = log
        command = server.command if core is None else ["taskset", "-c", str(core), *server.command]
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            command,
            cwd=server.cwd,
            env={**os.environ, **server.env},
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        url = f"http://127.0.0.1:{self.server.port}{self.server.ready_path}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.server.name} exited: {self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"{self.server.name} not ready after {timeout_s:g}s: {self.log_tail()}")

    def post(self, path: str, body: bytes) -> bytes:
        request = urllib.request.Request(
            self.server.url(path), data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return bytes(response.read())

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log_file.close()

    def log_tail(self, chars: int = 1500) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")[-chars:]

    def cpu_seconds(self) -> float:
        """User + system CPU time so far of every process in the server's group: divided
        by the requests served, a cost per request that other load on the machine moves
        much less than it moves latency."""
        done = subprocess.run(
            ["pgrep", "-g", str(self.process.pid)], capture_output=True, text=True
        )
        ticks = 0
        for pid in done.stdout.split():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue  # exited meanwhile
            fields = stat.rpartition(")")[2].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def workers(self) -> int:
        """Processes in the server's group (its workers included)."""
        done = subprocess.run(
            ["pgrep", "-g", str(self.process.pid)], capture_output=True, text=True
        )
        return len(done.stdout.split())
