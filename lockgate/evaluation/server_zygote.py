"""A warm parent for infra-validation's sandbox servers.

Starting ``lockgate serve`` costs two to three seconds on a laptop, nearly all of it
importing scikit-learn, SciPy, pandas and the model libraries. The zygote is one process
(``python -m lockgate.evaluation.server_zygote``) per validating process: it imports those
once, in the background from the moment a run is going to need it, and forks a fresh
server for each validation. Each server is still its own process running ``lockgate
serve``'s command line, with its own folder, environment, arguments and log.

The protocol is JSON lines. On the zygote's stdin: ``{"argv", "cwd", "env", "log"}``, a
server to start; on its stdout: ``{"pid": N}`` for each, and ``{"exited": N, "code": C}``
when one ends. When its stdin closes (its parent ended, however it ended, ``kill -9``
included), the zygote stops its servers and exits, so no server outlives the validation.
The zygote has no threads: forking it is safe.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any

#: What a server imports before it listens; absent libraries are skipped. (Not torch: it
#: starts threads at import, and a process with threads must not be forked.)
PRELOAD = (  # (lockgate.cli.main is run, not imported: runpy warns about a module imported before)
    "lockgate.cli.serve",
    "lockgate.serving.server",
    "lockgate.serving.app",
    "lockgate.serving.reload",
    "lockgate.serving.servable",
    "lockgate.serving.oip_v2",
    "lockgate.serving.tfserving_v1",
    "lockgate.metadata.store",
    "lockgate.training.model_files",
    "lockgate.training.transform",
    "uvicorn",
    "httptools",
    "uvloop",
    "sklearn.base",
)
#: What loading a model of each framework imports, done in the zygote before it forks (so
#: the next server of that framework finds it imported). A hint for speed only.
FRAMEWORK_IMPORTS = {
    "lightgbm": ("lightgbm",),
    "xgboost": ("xgboost",),
    "sklearn": ("skops.io",),
    "onnx": ("onnxruntime",),
}
#: Seconds a server has to end after SIGTERM when the zygote shuts down.
GRACE_S = 5.0


class ServerProcess:
    """A server the zygote forked, with the part of ``subprocess.Popen`` the sandbox uses."""

    def __init__(self, zygote: Zygote, pid: int) -> None:
        self.zygote, self.pid = zygote, pid

    def poll(self) -> int | None:
        return self.zygote.exit_code(self.pid)

    def wait(self, timeout: float | None = None) -> int:
        code = self.zygote.wait_exit(self.pid, timeout)
        if code is None:
            raise subprocess.TimeoutExpired(f"server {self.pid}", timeout or 0.0)
        return code

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass


class Zygote:
    """The parent's handle on the zygote process: start servers, learn when they end."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lockgate.evaluation.server_zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        )
        self._exits: dict[int, int] = {}
        self._started: list[int] = []
        self._changed = threading.Condition()
        self._send_lock = threading.Lock()
        threading.Thread(target=self._read, name="lockgate-zygote", daemon=True).start()

    def alive(self) -> bool:
        return self.process.poll() is None

    def spawn(
        self,
        argv: list[str],
        *,
        cwd: str,
        env: dict[str, str],
        log: str,
        framework: str | None = None,
    ) -> ServerProcess:
        """Fork a server running ``argv`` (``["lockgate", "serve", ...]``) for a model of
        ``framework``."""
        imports = FRAMEWORK_IMPORTS.get(framework or "", ())
        request = json.dumps(
            {"argv": argv, "cwd": cwd, "env": env, "log": log, "imports": list(imports)}
        )
        with self._send_lock:
            assert self.process.stdin is not None
            with self._changed:
                seen = len(self._started)
            self.process.stdin.write(request.encode() + b"\n")
            self.process.stdin.flush()
            with self._changed:
                if not self._changed.wait_for(lambda: len(self._started) > seen, 120):
                    raise RuntimeError("the server zygote did not start the server")
                return ServerProcess(self, self._started[seen])

    def exit_code(self, pid: int) -> int | None:
        with self._changed:
            return self._exits.get(pid)

    def wait_exit(self, pid: int, timeout: float | None) -> int | None:
        with self._changed:
            self._changed.wait_for(lambda: pid in self._exits, timeout)
            return self._exits.get(pid)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            with self._changed:
                if "pid" in message:
                    self._started.append(int(message["pid"]))
                else:
                    self._exits[int(message["exited"])] = int(message["code"])
                self._changed.notify_all()
        with self._changed:  # the zygote ended: so did every server it had
            for pid in self._started:
                self._exits.setdefault(pid, -signal.SIGKILL)
            self._changed.notify_all()


_zygote: Zygote | None = None
_zygote_lock = threading.Lock()


def zygote() -> Zygote:
    """This process's zygote, started on first use (and again if it died)."""
    global _zygote
    with _zygote_lock:
        if _zygote is None or not _zygote.alive():
            _zygote = Zygote()
        return _zygote


def warm() -> None:
    """Start the zygote now, so that its imports overlap the steps before validation."""
    try:
        zygote()
    except OSError:
        pass  # validation starts it again, and reports what fails then


# ---- the zygote process ------------------------------------------------------------


def _preload(names: tuple[str, ...] | list[str]) -> None:
    for name in names:
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - a library that does not import is not preloaded
            pass


def main() -> None:
    _preload(PRELOAD)
    out = sys.stdout.buffer
    children: set[int] = set()
    pending = b""
    while True:
        readable, _, _ = select.select([0], [], [], 0.05)
        _reap(children, out)
        if not readable:
            continue
        chunk = os.read(0, 65536)
        if not chunk:  # the parent is gone: so must the servers be
            _stop(children, out)
            return
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            _preload(request.get("imports", []))
            pid = os.fork()
            if pid == 0:
                _child(request)  # never returns
            children.add(pid)
            _write(out, {"pid": pid})


def _write(out: IO[bytes], message: dict[str, Any]) -> None:
    out.write(json.dumps(message).encode() + b"\n")
    out.flush()


def _reap(children: set[int], out: IO[bytes]) -> None:
    for pid in list(children):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            children.discard(pid)
            _write(out, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _stop(children: set[int], out: IO[bytes]) -> None:
    for pid in children:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    while children and time.monotonic() < deadline:
        _reap(children, out)
        time.sleep(0.02)
    for pid in children:
        os.kill(pid, signal.SIGKILL)


def _child(request: dict[str, Any]) -> None:
    """In the forked server: its own folder, environment, arguments and log, then
    ``lockgate serve``'s command line; exits with its status."""
    code = 1
    try:
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        paths = request["env"].get("PYTHONPATH", "")
        sys.path[:0] = [p for p in paths.split(os.pathsep) if p and p not in sys.path]
        sys.argv = list(request["argv"])
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        import runpy

        try:  # what `python -m lockgate.cli.main serve ...` runs (the CLI is the layer above)
            runpy.run_module("lockgate.cli.main", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - the traceback goes to the server's log
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


if __name__ == "__main__":
    main()
