"""Helpers shared by the test modules (on sys.path through pytest's ``pythonpath``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LOCKGATE = [sys.executable, "-m", "lockgate.cli.main"]


def lockgate(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real `lockgate` command in a subprocess, as a user runs it."""
    return subprocess.run(
        [*LOCKGATE, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


def rows_and_peak_rss(child_code: str, *args: str) -> tuple[int, int]:
    """Run ``child_code`` in a fresh interpreter and return the ``rows`` and ``peak`` (bytes)
    it prints as JSON. Arrow uses the system allocator there, so that memory given back is
    seen as given back and the peak measures what the code holds, not the pool's caching."""
    done = subprocess.run(
        [sys.executable, "-c", child_code, *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system"},
    )
    result = json.loads(done.stdout)
    return result["rows"], result["peak"]


def free_port() -> int:
    """A TCP port nobody listens on now, for a server the test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(process: subprocess.Popen[str], url: str, timeout_s: float = 60) -> None:
    """Poll ``url``/v2/health/ready until it answers 200; fail with the server's output if
    the process exits first, or after ``timeout_s``."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "server did not become ready"
        time.sleep(0.1)


def start_plain_execution(
    store: Any,
    step: str = "s",
    *,
    pipeline: str = "p",
    params: dict[str, Any] | None = None,
    inputs: dict[str, Any] | None = None,
) -> tuple[int, int]:
    """A new run of ``pipeline`` with one running, uncached execution of ``step`` (the
    component of the same name): (run id, execution id)."""
    run_id = store.start_run(pipeline)
    execution = store.start_execution(
        run_id,
        step=step,
        component=step,
        cache_key=None,
        code_fingerprint=None,
        params=params or {},
        inputs=inputs or {},
    )
    return run_id, execution


def publish_pushed_model(store: Any, artifact: Any, *, pipeline: str = "p") -> Any:
    """Register ``artifact`` (a PushedModel) the way the launcher does: a run whose push
    execution publishes it. Returns the artifact, now with its store id."""
    run_id, execution = start_plain_execution(store, "push", pipeline=pipeline)
    store.publish_execution(execution, {"pushed_model": artifact})
    store.finish_run(run_id, "complete")
    return artifact


@contextmanager
def served(project: Path, *args: str) -> Iterator[str]:
    """``lockgate serve`` of ``project`` (with ``args``) on a free port, as a user starts
    it; yields its URL once it is ready and stops it on leaving."""
    port = free_port()
    process = subprocess.Popen(
        [*LOCKGATE, "serve", "--port", str(port), *args],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def answers_in_child(code: str, files: dict[Path, bytes]) -> list[str]:
    """Write ``files``, run ``code`` in a fresh interpreter with their paths as arguments and
    return its output lines (one answer per file); a crash of the child (a model library
    segfaulting on a file) fails the test, naming the file it died on."""
    for path, data in files.items():
        path.write_bytes(data)
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, files)], capture_output=True, text=True, timeout=120
    )
    answers = done.stdout.splitlines()
    assert done.returncode == 0, (
        f"the child crashed (rc {done.returncode}) on file {len(answers) + 1} of {len(files)}:"
        f" {done.stderr[-400:]}"
    )
    return answers
