"""What the benchmarks time with: a command's wall time, and a median.

Not ``statistics.median``: a benchmark runs with bench/ first on ``sys.path``, where
bench/statistics.py shadows the standard module.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Seconds ``command`` took; exits naming it and its output when it failed."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def median_of(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
