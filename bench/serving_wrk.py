"""Drive a server with wrk: POST one body over and over, read the figures back as JSON.

wrk's Lua ``done()`` hook prints the exact latency percentiles (in microseconds) and the
error counts, so nothing is parsed from its human-readable report.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_SCRIPT = """
local f = assert(io.open(%(body)s, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,' ..
    '"write":%%d,"status":%%d,"timeout":%%d,"p50_us":%%d,"p99_us":%%d,"max_us":%%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass
class Result:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    #: the longest request
    max_ms: float = 0.0
    #: the server's CPU time (all its processes) per request, in ms; None when not read
    cpu_ms: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def median(results: list[Result]) -> Result:
    """The median of several runs of one cell, figure by figure (requests/s, p50 and p99
    each their own median); errors are summed over the runs."""
    rps = float(np.median([r.rps for r in results]))
    cpu = [r.cpu_ms for r in results if r.cpu_ms is not None]
    return Result(
        requests=round(rps * 1000),
        seconds=1000.0,
        errors=sum(r.errors for r in results),
        p50_ms=float(np.median([r.p50_ms for r in results])),
        p99_ms=float(np.median([r.p99_ms for r in results])),
        max_ms=float(np.median([r.max_ms for r in results])),
        cpu_ms=float(np.median(cpu)) if cpu else None,
    )


def find_wrk() -> str | None:
    return shutil.which("wrk")


def write_script(body: bytes, folder: Path, name: str) -> Path:
    """The body in its own file and a Lua script that POSTs it."""
    body_file = folder / f"{name}.body"
    body_file.write_bytes(body)
    script = folder / f"{name}.lua"
    script.write_text(_SCRIPT % {"body": json.dumps(str(body_file))})
    return script


def run(
    url: str,
    script: Path,
    *,
    connections: int,
    seconds: float,
    core: int | None,
    timeout_s: float = 10.0,
) -> Result:
    """One wrk run; errors are socket errors (connect, read, write, timeout) plus answers
    with a status of 400 or more (wrk's ``status`` count)."""
    threads = 1 if connections == 1 else min(2, connections)
    seconds = max(1, math.ceil(seconds))  # wrk takes whole seconds
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={timeout_s:g}s",
        "-s",
        str(script),
        url,
    ]
    if core is not None:
        command = ["taskset", "-c", str(core), *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    data = json.loads(line.removeprefix("WRK_RESULT "))
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Result(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=errors,
        p50_ms=data["p50_us"] / 1000.0,
        p99_ms=data["p99_us"] / 1000.0,
        max_ms=data["max_us"] / 1000.0,
    )
