"""Wall time of the demo pipeline, of a cached re-run and of a one-parameter change.

Prints each figure beside the floor it is measured against: the bare interpreter start-up
(`python -c pass`) and `lockgate --help`. The issue's target: a cached re-run within 2 s of
interpreter start-up. Run: `python bench/pipeline_demo.py [--repeat N]`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from timing import median_of, timed

LOCKGATE = [sys.executable, "-m", "lockgate.cli.main"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(args.repeat):
            workdir = root / f"run{i}"
            workdir.mkdir()
            project = workdir / "lockgate-demo"
            figures.setdefault("python -c pass (floor)", []).append(
                timed([sys.executable, "-c", "pass"], workdir)
            )
            figures.setdefault("lockgate --help", []).append(timed([*LOCKGATE, "--help"], workdir))
            figures.setdefault("lockgate demo (fresh)", []).append(
                timed([*LOCKGATE, "demo"], workdir)
            )
            figures.setdefault("lockgate run (all cached)", []).append(
                timed([*LOCKGATE, "run"], project)
            )
            figures.setdefault("lockgate run --set train...(3 steps)", []).append(
                timed([*LOCKGATE, "run", "--set", f"train.params.n_estimators={60 + i}"], project)
            )
    floor = median_of(figures["python -c pass (floor)"])
    print(f"{'command':<40}{'median s':>10}{'min s':>9}{'max s':>9}{'- floor s':>11}")
    for name, values in figures.items():
        median = median_of(values)
        print(
            f"{name:<40}{median:>10.3f}{min(values):>9.3f}{max(values):>9.3f}{median - floor:>11.3f}"
        )
    cached = median_of(figures["lockgate run (all cached)"]) - floor
    verdict = "meets" if cached < 2.0 else "MISSES"
    print(f"\ncached re-run beyond interpreter start-up: {cached:.3f} s ({verdict} the 2 s target)")
    print("peer: none measured yet; TFX and ZenML need their own environments (see docs).")


if __name__ == "__main__":
    main()
