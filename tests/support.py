"""Helpers shared by the test modules (on sys.path through pytest's ``pythonpath``)."""

from __future__ import annotations

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
