"""Statistics throughput and memory: lockgate against TFDV and against reading the data.

For each size (default 1M and 10M rows of a taxi-like table, see ``taxi_data.py``) every
measurement runs in a fresh subprocess, so its peak RSS (``ru_maxrss``) is its own:

* floor:         ``pyarrow.parquet.read_table`` of the Parquet file (what any engine pays);
* lockgate:      ``compute_statistics`` on the Parquet file and on the CSV file;
* TFDV:          ``generate_statistics_from_csv`` and ``generate_statistics_from_dataframe``
                 (the DataFrame read beforehand, not timed), run with the python of
                 ``bench/.venv-tfdv`` (see bench/README.md); only up to ``--tfdv-max-rows``.

Then the start-up time of ``python -c "import lockgate.data.statistics"``. Prints one row
per measurement and the issue's targets with the measured ratios.
Run: ``python bench/statistics.py [--rows 1000000] [--data-dir /tmp/lockgate-bench]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TFDV_PYTHON = HERE / ".venv-tfdv" / "bin" / "python"
KINDS = ("floor", "lockgate-parquet", "lockgate-csv", "tfdv-csv", "tfdv-dataframe")
LABELS = {
    "floor": "floor: pyarrow.parquet.read_table",
    "lockgate-parquet": "lockgate compute_statistics (Parquet)",
    "lockgate-csv": "lockgate compute_statistics (CSV)",
    "tfdv-csv": "TFDV generate_statistics_from_csv",
    "tfdv-dataframe": "TFDV generate_statistics_from_dataframe",
}


def child(kind: str, parquet: str, csv: str) -> None:
    """Run one measurement in this (fresh) process and print its wall time as JSON."""
    if kind == "floor":
        import pyarrow.parquet as pq

        started = time.perf_counter()
        rows = pq.read_table(parquet).num_rows
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


def measure(python: str, kind: str, parquet: Path, csv: Path) -> dict[str, float] | str:
    """Wall seconds, rows and peak RSS (MB) of one child, or why it failed."""
    env = {**os.environ, "PYTHONPATH": str(HERE.parent), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [python, str(Path(__file__).resolve()), "--child", kind, str(parquet), str(csv)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return f"failed: {lines[-1] if lines else done.returncode}"
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def tfdv_available() -> bool:
    if not TFDV_PYTHON.exists():
        return False
    check = [str(TFDV_PYTHON), "-c", "import tensorflow_data_validation"]
    return subprocess.run(check, capture_output=True, timeout=300).returncode == 0


def startup_seconds() -> float:
    """Best of five: ``python -c "import lockgate.data.statistics"``."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import lockgate.data.statistics"], check=True)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, action="append", help="repeatable; default 1M and 10M")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/lockgate-bench"))
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
        print("TFDV: not available (see bench/README.md)")
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start\n")
    rows_list = args.rows or [1_000_000, 10_000_000]
    results: dict[tuple[str, int], dict[str, float] | str] = {}
    header = f"{'what':42s} {'rows':>10s} {'wall s':>8s} {'rows/s':>12s} {'peak RSS MB':>12s}"
    print(header)
    print("-" * len(header))
    for rows in rows_list:
        parquet, csv = ensure_data(args.data_dir, rows)
        for kind in KINDS:
            is_tfdv = kind.startswith("tfdv")
            if is_tfdv and (not have_tfdv or rows > args.tfdv_max_rows):
                continue
            python = str(TFDV_PYTHON) if is_tfdv else sys.executable
            r = results[(kind, rows)] = measure(python, kind, parquet, csv)
            if isinstance(r, str):
                print(f"{LABELS[kind]:42s} {rows:>10,d} {r}")
            else:
                rate = r["rows"] / r["wall"]
                print(
                    f"{LABELS[kind]:42s} {rows:>10,d} {r['wall']:>8.2f} {rate:>12,.0f}"
                    f" {r['rss_mb']:>12,.0f}",
                    flush=True,
                )
    startup = startup_seconds()
    print(
        f"\nstart-up: python -c 'import lockgate.data.statistics': {startup:.2f} s (target < 1 s)"
    )
    print_targets(results, rows_list)


def print_targets(
    results: dict[tuple[str, int], dict[str, float] | str], rows_list: list[int]
) -> None:
    def wall(kind: str, rows: int) -> float | None:
        r = results.get((kind, rows))
        return None if r is None or isinstance(r, str) else r["wall"]

    print("\ntargets (ratios of measured wall times at the same rows):")
    for rows in rows_list:
        ours, ours_csv, floor = (
            wall("lockgate-parquet", rows),
            wall("lockgate-csv", rows),
            wall("floor", rows),
        )
        tfdv_csv, tfdv_df = wall("tfdv-csv", rows), wall("tfdv-dataframe", rows)
        if ours_csv and tfdv_csv:
            print(
                f"  {rows:>10,d} rows: TFDV CSV / lockgate CSV = {tfdv_csv / ours_csv:6.1f}x (>= 20x)"
            )
        if ours and tfdv_df:
            print(
                f"  {rows:>10,d} rows: TFDV DataFrame / lockgate Parquet = {tfdv_df / ours:6.1f}x (>= 2x)"
            )
        if ours and floor:
            print(f"  {rows:>10,d} rows: lockgate Parquet / floor = {ours / floor:6.2f}x (<= 3x)")
        r = results.get(("lockgate-parquet", rows))
        if r is not None and not isinstance(r, str):
            print(
                f"  {rows:>10,d} rows: lockgate Parquet peak RSS {r['rss_mb']:,.0f} MB (< 1,500 MB)"
            )
    rss = {
        rows: r["rss_mb"]
        for rows in rows_list
        if not isinstance(r := results.get(("lockgate-parquet", rows)), str) and r is not None
    }
    if len(rss) > 1:
        (small, small_mb), (big, big_mb) = min(rss.items()), max(rss.items())
        print(
            f"  lockgate Parquet peak RSS at {big:,d} rows / at {small:,d} rows = "
            f"{big_mb:,.0f} / {small_mb:,.0f} MB = {big_mb / small_mb:.2f}x "
            "(does not grow with file size)"
        )


if __name__ == "__main__":
    main()
