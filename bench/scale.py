"""Scale-out: the Ray runner against the local runner, and 2 Ray workers against 1.

Three measurements, in one process, interleaved A, B, A, B with ``--repeat`` (medians):

* statistics over a folder of 20 Parquet files (``--rows`` rows in all, default 10M;
  ``--rows 2000000`` is quick), generated with a fixed seed and kept in ``--data``: one
  accumulator per file through ``runner.map`` and merged in file order, as
  ``compute_statistics`` does. Local runner (threads) against the Ray runner (one task
  per file). The merged results must be equal (asserted on row counts and means).
* the same statistics on Ray with 1 worker against 2 workers, 1 CPU each: every shard asks
  for 1 CPU (its column threads follow the CPUs it was given) and for a share of the
  node's ``shard_slot`` resource (2 of them): all of it, so shards run one at a time
  (1 worker), or half, so they run two at a time (2 workers).
* a 5-step pipeline (ingest, statistics, schema, transform, train on the penguins data),
  uncached, local runner against the Ray runner: the per-step overhead of a task.

Targets (issue 11): Ray within 10% of local on one machine; 2 workers >= 1.7x faster
than 1 on the statistics. Ray is started once, on 127.0.0.1, with ``--cpus`` CPUs
(default: every core). Run: ``python bench/scale.py [--rows 10000000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FILES = 20
SEED = 11
PENGUINS = Path(__file__).parents[1] / "lockgate/templates/penguins/data/penguins.csv"


def make_files(folder: Path, rows: int) -> list[Path]:
    """20 Parquet files of ``rows`` rows in all: 4 float, 1 integer, 2 string columns."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"part-{i:02d}.parquet" for i in range(FILES)]
    marker = folder / f".rows-{rows}"
    if marker.exists() and all(p.exists() for p in paths):
        return paths
    rng = np.random.default_rng(SEED)
    cities = np.array([f"city_{i}" for i in range(50)])
    for i, path in enumerate(paths):
        n = rows // FILES + (1 if i < rows % FILES else 0)
        table = pa.table(
            {
                "fare": rng.gamma(2.0, 8.0, n),
                "distance": rng.exponential(3.0, n),
                "tip": np.where(rng.random(n) < 0.1, np.nan, rng.normal(2.0, 1.0, n)),
                "duration": rng.lognormal(2.5, 0.6, n),
                "passengers": rng.integers(1, 7, n),
                "city": cities[rng.integers(0, len(cities), n)],
                "payment": np.where(rng.random(n) < 0.7, "card", "cash"),
            }
        )
        pq.write_table(table, path, row_group_size=262_144)
    marker.touch()
    return paths


def statistics_of(runner: Any, files: list[Path]) -> dict[str, Any]:
    from lockgate.data.statistics import accumulate_files

    shards = runner.map(accumulate_files, files)
    merged = shards[0]
    for other in shards[1:]:
        merged = merged.merge(other)
    return merged.result()


def summary(result: dict[str, Any]) -> tuple[int, float]:
    return result["num_rows"], round(float(result["features"]["fare"]["mean"]), 9)


def five_steps() -> Any:
    from lockgate import Pipeline
    from lockgate.components import (
        compute_statistics,
        fit_transform,
        infer_schema,
        ingest,
        train,
    )

    examples = ingest(path=str(PENGUINS), eval_fraction=0.25)
    stats = compute_statistics(examples=examples.outputs.examples)
    schema = infer_schema(statistics=stats.outputs.statistics)
    transform = fit_transform(
        examples=examples.outputs.examples, schema=schema.outputs.schema, label="species"
    )
    model = train(
        examples=examples.outputs.examples,
        transform=transform.outputs.transform,
        trainer="lightgbm",
        params={"n_estimators": 50},
    )
    return Pipeline("scale", [examples, stats, schema, transform, model])


def pipeline_run(runner: Any) -> float:
    from lockgate.core.run import run_pipeline
    from lockgate.metadata.store import SqlMetadataStore

    folder = Path(tempfile.mkdtemp(prefix="lg-scale-"))
    store = SqlMetadataStore(f"sqlite:///{folder / 'metadata.db'}")
    try:
        started = time.perf_counter()
        result = run_pipeline(
            five_steps(),
            store=store,
            artifact_root=folder / "artifacts",
            project_dir=folder,
            runner=runner,
            use_cache=False,
        )
        took = time.perf_counter() - started
        assert result.ok, result.error
        return took
    finally:
        store.close()
        shutil.rmtree(folder, ignore_errors=True)


def interleaved(
    a: Callable[[], Any], b: Callable[[], Any], repeat: int
) -> tuple[list[float], list[float], list[Any]]:
    """A, B, A, B, ...: seconds of each, and what each returned (for the equality check)."""
    times_a, times_b, answers = [], [], []
    for _ in range(repeat):
        for fn, times in ((a, times_a), (b, times_b)):
            started = time.perf_counter()
            answers.append(fn())
            times.append(time.perf_counter() - started)
    return times_a, times_b, answers


def median(times: list[float]) -> float:
    """(``statistics`` here is bench/statistics.py, the script folder comes first.)"""
    return float(np.median(times))


def line(name: str, times: list[float]) -> str:
    return f"  {name:<34} median {median(times):7.2f} s   runs {times_text(times)}"


def times_text(times: list[float]) -> str:
    return " ".join(f"{t:.2f}" for t in times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--data", type=Path, default=None, help="folder for the Parquet files")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    from lockgate.core.runners import LocalRunner
    from lockgate.core.runners.ray import RayRunner

    data = args.data or Path(tempfile.gettempdir()) / f"lockgate-scale-{args.rows}"
    started = time.perf_counter()
    files = make_files(data, args.rows)
    made = time.perf_counter() - started
    size = sum(p.stat().st_size for p in files) / 2**20
    print(f"bench/scale.py: {args.rows:,} rows in {FILES} Parquet files ({size:.0f} MiB, {data})")
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"Ray on 127.0.0.1 with {args.cpus} CPUs; repeat {args.repeat}, interleaved; "
        f"data made or found in {made:.1f} s"
    )
    local = LocalRunner()
    ray_started = time.perf_counter()
    slots = {"shard_slot": 2.0}
    ray_runner = RayRunner(num_cpus=args.cpus, resources=slots).start()
    print(f"Ray started in {time.perf_counter() - ray_started:.1f} s (not in any figure below)")
    one_worker = RayRunner(shard_cpus=1, shard_resources={"shard_slot": 2.0})  # one at a time
    two_workers = RayRunner(shard_cpus=1, shard_resources={"shard_slot": 1.0})  # two at a time
    try:
        statistics_of(ray_runner, files[:2])  # warm the workers' imports, not timed
        pipeline_run(ray_runner)

        print("\nstatistics over 20 files (one shard per file, merged on the driver)")
        t_local, t_ray, answers = interleaved(
            lambda: statistics_of(local, files), lambda: statistics_of(ray_runner, files),
            args.repeat,
        )  # fmt: skip
        assert len({summary(a) for a in answers}) == 1, [summary(a) for a in answers]
        print(line("local runner (threads)", t_local))
        print(line("Ray runner (a task per file)", t_ray))
        ratio = median(t_ray) / median(t_local)
        print(f"  Ray / local: {ratio:.2f}  (target <= 1.10)")

        print("\nstatistics on Ray: 1 worker against 2 (1 CPU each)")
        t_one, t_two, answers = interleaved(
            lambda: statistics_of(one_worker, files), lambda: statistics_of(two_workers, files),
            args.repeat,
        )  # fmt: skip
        assert len({summary(a) for a in answers}) == 1
        print(line("1 worker (shards one at a time)", t_one))
        print(line("2 workers (shards two at a time)", t_two))
        speedup = median(t_one) / median(t_two)
        print(f"  speed-up: {speedup:.2f}x  (target >= 1.7x)")

        print("\n5-step pipeline (ingest, statistics, schema, transform, train; penguins)")
        p_local, p_ray, _ = interleaved(
            lambda: pipeline_run(local), lambda: pipeline_run(ray_runner), args.repeat
        )
        print(line("local runner", p_local))
        print(line("Ray runner", p_ray))
        ratio = median(p_ray) / median(p_local)
        print(f"  Ray / local: {ratio:.2f}  (target <= 1.10)")
    finally:
        ray_runner.shutdown()


if __name__ == "__main__":
    main()
