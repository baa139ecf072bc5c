"""Start-up cost: `import lockgate`, `lockgate --help` and a fully cached `lockgate run`.

Each command runs N times in a fresh process after one warm-up round, the commands
interleaved (one of each per round), so that a busy spell of the machine falls on all of
them alike. Prints the best and the median wall time, raw and beyond interpreter start-up
(`python -c pass`, which includes `site` and, in an editable install, its import finder;
`python -S -c pass` shows the interpreter without `site`), and the issue's targets with
"met" or "not met", judged on the median:

* `python -c "import lockgate"` under 60 ms, raw;
* `lockgate --help` under 100 ms, raw;
* a cached demo run (every step a cache hit) under 0.2 s beyond interpreter start-up.

`python -c "import sqlalchemy"` is printed for scale: a cached run reads and writes the
metadata store, so SQLAlchemy's import is part of its floor.

The project is made once with `lockgate demo` (in a temporary folder, or in `--project DIR`
when DIR does not exist yet; an existing DIR is reused), then `lockgate run` is timed there.
`lockgate` is the console script beside this interpreter when there is one (what a user
types), else `python -m lockgate.cli.main`. Run: `python bench/startup.py [--repeat N]
[--project DIR]`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import median_of, timed

PYTHON = sys.executable
#: what the commands run with: as a user's shell has it, bytecode caches written and read
#: (PYTHONDONTWRITEBYTECODE would compile every lockgate module from source at each start)
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def lockgate_command() -> list[str]:
    script = Path(PYTHON).parent / "lockgate"
    return [str(script)] if script.exists() else [PYTHON, "-m", "lockgate.cli.main"]


def cached_project(lockgate: list[str], project: Path) -> Path:
    """A demo project whose every step is a cache hit on the next `lockgate run`."""
    if not project.exists():
        print(f"making the demo project in {project} (lockgate demo) ...", flush=True)
        subprocess.run(
            [*lockgate, "demo", "--dir", str(project)], env=ENV, check=True, capture_output=True
        )
    for _ in range(2):  # the demo writes schema.yaml, which the next run reads: one more miss
        check = subprocess.run(
            [*lockgate, "run"], cwd=project, env=ENV, capture_output=True, text=True
        )
        steps = [line for line in check.stdout.splitlines() if line.startswith("  ")]
        if check.returncode == 0 and not any(" miss" in line for line in steps):
            return project
    raise SystemExit(f"the re-run is not fully cached:\n{check.stdout}\n{check.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=11, help="runs of each command")
    parser.add_argument("--project", type=Path, default=None, help="a demo project to reuse")
    args = parser.parse_args()
    lockgate = lockgate_command()
    with tempfile.TemporaryDirectory() as tmp:
        project = cached_project(lockgate, (args.project or Path(tmp) / "lockgate-demo").resolve())
        here = Path(tmp)
        commands: dict[str, tuple[list[str], Path]] = {
            "python -S -c pass (no site)": ([PYTHON, "-S", "-c", "pass"], here),
            "python -c pass (floor)": ([PYTHON, "-c", "pass"], here),
            "python -c 'import lockgate'": ([PYTHON, "-c", "import lockgate"], here),
            "lockgate --help": ([*lockgate, "--help"], here),
            "lockgate run (all cached)": ([*lockgate, "run"], project),
            # the metadata store's library: a cached run reads and writes the store
            "python -c 'import sqlalchemy'": ([PYTHON, "-c", "import sqlalchemy"], here),
        }
        for command, cwd in commands.values():  # warm-up: bytecode and file caches
            timed(command, cwd, ENV)
        figures: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeat):
            for name, (command, cwd) in commands.items():
                figures[name].append(timed(command, cwd, ENV))
    targets = {  # name: (limit in s, measured beyond interpreter start-up?)
        "python -c 'import lockgate'": (0.060, False),
        "lockgate --help": (0.100, False),
        "lockgate run (all cached)": (0.200, True),
    }
    floor = median_of(figures["python -c pass (floor)"])
    best_floor = min(figures["python -c pass (floor)"])
    where = subprocess.run(
        [PYTHON, "-c", "import lockgate; print(lockgate.__file__)"],
        cwd=tempfile.gettempdir(),  # not this folder: `python -c` imports from the current one
        env=ENV,
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"{sys.version.split()[0]} {PYTHON}; lockgate = {' '.join(lockgate)} ({where})")
    print(f"{args.repeat} runs each after a warm-up, interleaved; beyond = minus `python -c pass`")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end")
    header = f"{'command':<30}{'best ms':>9}{'median ms':>11}{'beyond best':>13}"
    print(f"{header}{'beyond median':>15}  target")
    for name, values in figures.items():
        median, best = median_of(values), min(values)
        line = (
            f"{name:<30}{best * 1e3:>9.1f}{median * 1e3:>11.1f}"
            f"{(best - best_floor) * 1e3:>13.1f}{(median - floor) * 1e3:>15.1f}"
        )
        if name in targets:
            limit, beyond = targets[name]
            measured = median - floor if beyond else median
            verdict = "met" if measured < limit else "not met"
            what = "beyond start-up" if beyond else "raw"
            line += f"  < {limit * 1e3:.0f} ms {what}: {verdict}"
        print(line)


if __name__ == "__main__":
    main()
