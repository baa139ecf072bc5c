"""Helpers shared by the test modules (on sys.path through pytest's ``pythonpath``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
