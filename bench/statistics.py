"""Statistics throughput and memory: lockgate against reading the data, and against TFDV.

For each size (default 1M and 10M rows of a taxi-like table, see ``taxi_data.py``) every
measurement runs in a fresh subprocess, so its peak RSS (``ru_maxrss``) is its own:

* read floors:   ``pyarrow.parquet.read_table`` and ``polars.read_parquet`` of the Parquet
                 file, ``pyarrow.csv.read_csv`` and ``polars.read_csv`` of the CSV file
                 (what any engine pays to read the data once, whole, with every core);
* lockgate:      ``compute_statistics`` on the Parquet file and on the CSV file;
* TFDV:          ``generate_statistics_from_csv`` and ``generate_statistics_from_dataframe``
                 (the DataFrame read beforehand, not timed), run with the python of
                 ``bench/.venv-tfdv`` (see bench/README.md); only up to ``--tfdv-max-rows``.

The cells run interleaved, ``--rounds`` times (every kind once per round, round after
round: this machine's speed drifts 2x over minutes, so sequential passes are not
comparable); each figure is the median over the rounds. lockgate is compared with the
faster of the two read floors of each format.

Then the start-up: ``python -c "import lockgate.data.statistics"``, and ``lockgate stats``
(``python -m lockgate.cli.main stats``) on a 10k-row CSV and Parquet file, raw and beyond
interpreter start (``python -c pass``), medians of ``--startup-runs`` interleaved runs.
Prints one row per measurement and the issue's targets, each as met or not met.
Run: ``python bench/statistics.py [--rows 1000000] [--data-dir /tmp/lockgate-bench]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent
TFDV_PYTHON = HERE / ".venv-tfdv" / "bin" / "python"
KINDS = (
    "floor-pyarrow-parquet",
    "floor-polars-parquet",
    "lockgate-parquet",
    "floor-pyarrow-csv",
    "floor-polars-csv",
    "lockgate-csv",
    "tfdv-csv",
    "tfdv-dataframe",
)
LABELS = {
    "floor-pyarrow-parquet": "floor: pyarrow.parquet.read_table",
    "floor-polars-parquet": "floor: polars.read_parquet",
    "lockgate-parquet": "lockgate compute_statistics (Parquet)",
    "floor-pyarrow-csv": "floor: pyarrow.csv.read_csv",
    "floor-polars-csv": "floor: polars.read_csv",
    "lockgate-csv": "lockgate compute_statistics (CSV)",
    "tfdv-csv": "TFDV generate_statistics_from_csv",
    "tfdv-dataframe": "TFDV generate_statistics_from_dataframe",
}
#: format -> (lockgate's kind, the floors' kinds, the most lockgate / faster floor may be)
FLOOR_TARGETS = {
    "Parquet": ("lockgate-parquet", ("floor-pyarrow-parquet", "floor-polars-parquet"), 2.0),
    "CSV": ("lockgate-csv", ("floor-pyarrow-csv", "floor-polars-csv"), 1.5),
}
STARTUP_ROWS = 10_000
STARTUP_TARGET_S = 0.2

Result = dict[str, float] | str


def child(kind: str, parquet: str, csv: str) -> None:
    """Run one measurement in this (fresh) process and print its wall time as JSON."""
    if kind == "floor-pyarrow-parquet":
        import pyarrow.parquet as pq

        started = time.perf_counter()
        rows = pq.read_table(parquet).num_rows
    elif kind == "floor-pyarrow-csv":
        import pyarrow.csv as pacsv

        started = time.perf_counter()
        rows = pacsv.read_csv(csv).num_rows
    elif kind.startswith("floor-polars"):
        import polars as pl

        started = time.perf_counter()
        frame = pl.read_parquet(parquet) if kind.endswith("parquet") else pl.read_csv(csv)
        rows = frame.height
    elif kind.startswith("lockgate"):
        from lockgate.data.statistics import compute_statistics

        started = time.perf_counter()
        rows = compute_statistics(parquet if kind == "lockgate-parquet" else csv)["num_rows"]
    elif kind == "tfdv-csv":
        import tensorflow_data_validation as tfdv

        started = time.perf_counter()
        stats = tfdv.generate_statistics_from_csv(csv)
        rows = int(stats.datasets[0].num_examples)
    else:
        import pandas as pd
        import tensorflow_data_validation as tfdv

        frame = pd.read_csv(csv)
        started = time.perf_counter()
        stats = tfdv.generate_statistics_from_dataframe(frame)
        rows = int(stats.datasets[0].num_examples)
    import resource

    wall = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": wall, "rows": rows, "rss_mb": rss_mb}))


def measure(python: str, kind: str, parquet: Path, csv: Path) -> Result:
    """Wall seconds, rows and peak RSS (MB) of one child, or why it failed."""
    env = {**os.environ, "PYTHONPATH": str(HERE.parent), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [python, str(Path(__file__).resolve()), "--child", kind, str(parquet), str(csv)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return f"failed: {lines[-1] if lines else done.returncode}"
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _median(values: Iterable[float]) -> float:
    """The median (this file is ``statistics.py``: the stdlib module of that name is
    shadowed when it runs as a script)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def median_result(runs: list[Result]) -> Result:
    """Medians of the rounds' wall time and peak RSS; a failure if any round failed."""
    failed = [r for r in runs if isinstance(r, str)]
    if failed:
        return failed[0]
    ok = [r for r in runs if not isinstance(r, str)]
    return {
        "wall": _median(r["wall"] for r in ok),
        "rows": ok[0]["rows"],
        "rss_mb": _median(r["rss_mb"] for r in ok),
        "walls": [r["wall"] for r in ok],  # type: ignore[dict-item]
    }


def tfdv_available() -> bool:
    if not TFDV_PYTHON.exists():
        return False
    check = [str(TFDV_PYTHON), "-c", "import tensorflow_data_validation"]
    return subprocess.run(check, capture_output=True, timeout=300).returncode == 0


def _seconds(command: list[str]) -> float:
    # with bytecode caches, as after an install (a PYTHONDONTWRITEBYTECODE=1 shell would
    # compile lockgate's modules at every start)
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    # in the repository: ``python -m`` puts the working folder before PYTHONPATH
    subprocess.run(command, check=True, env=env, cwd=HERE.parent, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def startup(data_dir: Path, runs: int) -> dict[str, float]:
    """Median seconds of each start-up command, run interleaved ``runs`` times."""
    from taxi_data import ensure_data

    parquet, csv = ensure_data(data_dir, STARTUP_ROWS)
    cli = [sys.executable, "-m", "lockgate.cli.main", "stats"]
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import lockgate.data.statistics": [
            sys.executable,
            "-c",
            "import lockgate.data.statistics",
        ],
        f"lockgate stats {csv.name}": [*cli, str(csv)],
        f"lockgate stats {parquet.name}": [*cli, str(parquet)],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for command in commands.values():  # a first run to warm the file cache
        _seconds(command)
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(_seconds(command))
    return {name: _median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, action="append", help="repeatable; default 1M and 10M")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/lockgate-bench"))
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    parser.add_argument("--startup-runs", type=int, default=7)
    parser.add_argument("--tfdv-max-rows", type=int, default=1_000_000)
    parser.add_argument("--skip-tfdv", action="store_true")
    parser.add_argument(
        "--child", nargs=3, metavar=("KIND", "PARQUET", "CSV"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    sys.path.insert(0, str(HERE))
    from taxi_data import ensure_data

    have_tfdv = not args.skip_tfdv and tfdv_available()
    if not have_tfdv:
        print("TFDV: not available or skipped (see bench/README.md)")
    print(
        f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start; "
        f"{args.rounds} interleaved rounds, medians\n"
    )
    rows_list = args.rows or [1_000_000, 10_000_000]
    files = {rows: ensure_data(args.data_dir, rows) for rows in rows_list}
    cells = [
        (rows, kind)
        for rows in rows_list
        for kind in KINDS
        if not kind.startswith("tfdv") or (have_tfdv and rows <= args.tfdv_max_rows)
    ]
    runs: dict[tuple[str, int], list[Result]] = {(kind, rows): [] for rows, kind in cells}
    for round_no in range(args.rounds):
        for rows, kind in cells:
            python = str(TFDV_PYTHON) if kind.startswith("tfdv") else sys.executable
            r = measure(python, kind, *files[rows])
            runs[(kind, rows)].append(r)
            shown = r if isinstance(r, str) else f"{r['wall']:.2f} s, {r['rss_mb']:,.0f} MB"
            print(f"  round {round_no + 1}: {LABELS[kind]:42s} {rows:>10,d} {shown}", flush=True)
    results = {key: median_result(r) for key, r in runs.items()}
    header = f"{'what':42s} {'rows':>10s} {'wall s':>8s} {'rows/s':>12s} {'peak RSS MB':>12s}"
    print(f"\n{header}\n{'-' * len(header)}")
    for rows, kind in cells:
        r = results[(kind, rows)]
        if isinstance(r, str):
            print(f"{LABELS[kind]:42s} {rows:>10,d} {r}")
        else:
            rate = r["rows"] / r["wall"]
            print(
                f"{LABELS[kind]:42s} {rows:>10,d} {r['wall']:>8.2f} {rate:>12,.0f}"
                f" {r['rss_mb']:>12,.0f}"
            )
    times = startup(args.data_dir, args.startup_runs)
    bare = times["python -c pass"]
    print(f"\nstart-up (median of {args.startup_runs} interleaved runs):")
    for name, seconds in times.items():
        beyond = "" if name == "python -c pass" else f"  ({seconds - bare:.3f} s beyond it)"
        print(f"  {name:42s} {seconds:.3f} s{beyond}")
    print_targets(results, rows_list, times)


def print_targets(
    results: dict[tuple[str, int], Result], rows_list: list[int], times: dict[str, float]
) -> None:
    def wall(kind: str, rows: int) -> float | None:
        r = results.get((kind, rows))
        return None if r is None or isinstance(r, str) else r["wall"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT MET"

    print("\ntargets (ratios of median wall times at the same rows):")
    for rows in rows_list:
        for fmt, (ours_kind, floor_kinds, most) in FLOOR_TARGETS.items():
            ours = wall(ours_kind, rows)
            floors = {k: w for k in floor_kinds if (w := wall(k, rows)) is not None}
            if ours is None or not floors:
                continue
            fastest = min(floors, key=lambda k: floors[k])
            ratio = ours / floors[fastest]
            print(
                f"  {rows:>10,d} rows: lockgate {fmt} / faster floor ({LABELS[fastest][7:]}) = "
                f"{ours:.2f} / {floors[fastest]:.2f} s = {ratio:5.2f}x (<= {most:g}x): "
                f"{verdict(ratio <= most)}"
            )
        ours_csv, tfdv_csv = wall("lockgate-csv", rows), wall("tfdv-csv", rows)
        ours_pq, tfdv_df = wall("lockgate-parquet", rows), wall("tfdv-dataframe", rows)
        if ours_csv and tfdv_csv:
            ratio = tfdv_csv / ours_csv
            print(
                f"  {rows:>10,d} rows: TFDV CSV / lockgate CSV = {ratio:6.1f}x (>= 20x): "
                f"{verdict(ratio >= 20)}"
            )
        if ours_pq and tfdv_df:
            ratio = tfdv_df / ours_pq
            print(
                f"  {rows:>10,d} rows: TFDV DataFrame / lockgate Parquet = {ratio:6.1f}x "
                f"(>= 2x): {verdict(ratio >= 2)}"
            )
        for kind in ("lockgate-parquet", "lockgate-csv"):
            r = results.get((kind, rows))
            if r is not None and not isinstance(r, str):
                print(
                    f"  {rows:>10,d} rows: {LABELS[kind][9:]} peak RSS {r['rss_mb']:,.0f} MB "
                    f"(< 1,500 MB): {verdict(r['rss_mb'] < 1500)}"
                )
    for kind in ("lockgate-parquet", "lockgate-csv"):
        rss = {
            rows: r["rss_mb"]
            for rows in rows_list
            if (r := results.get((kind, rows))) is not None and not isinstance(r, str)
        }
        if len(rss) > 1:
            (small, small_mb), (big, big_mb) = min(rss.items()), max(rss.items())
            flat = big_mb / small_mb
            print(
                f"  {LABELS[kind][9:]} peak RSS at {big:,d} rows / at {small:,d} rows = "
                f"{big_mb:,.0f} / {small_mb:,.0f} MB = {flat:.2f}x (flat, <= 1.25x): "
                f"{verdict(flat <= 1.25)}"
            )
    bare = times["python -c pass"]
    for name, seconds in times.items():
        if name.startswith("lockgate stats"):
            beyond = seconds - bare
            print(
                f"  {name} ({STARTUP_ROWS:,d} rows): {beyond:.3f} s beyond interpreter start "
                f"(< {STARTUP_TARGET_S} s): {verdict(beyond < STARTUP_TARGET_S)}"
            )
    module = times["import lockgate.data.statistics"]
    print(f"  import lockgate.data.statistics: {module:.2f} s (< 1 s): {verdict(module < 1)}")


if __name__ == "__main__":
    main()
