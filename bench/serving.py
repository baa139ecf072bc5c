"""Serving throughput and latency: lockgate against MLServer and ``mlflow models serve``.

The same classifier (``serving_model.py``, 8 features; ``--model sklearn``: gradient
boosting, ``xgboost``: an XGBClassifier, ``torch_mlp``: lockgate's own PyTorch MLP) is
imported into a fresh lockgate project and served by ``lockgate serve`` (default settings,
and once more with batching off), by MLServer (``mlserver start``: its sklearn or XGBoost
runtime, or for torch_mlp the minimal custom runtime ``serving_mlserver_torch.py``) and, for
sklearn only, by ``mlflow models serve --env-manager local``, each with its default settings. Every server is
pinned to one core (``taskset -c 0``: its workers too) and driven by wrk pinned to another
(``taskset -c 1``) at 1, 16 and 64 connections with 1-row and 100-row requests. Before the
load each server's answer to a 100-row request is checked against the in-process model.

Prints one table (requests/s, p50, p99, errors per server, concurrency and rows), the bare
in-process predict p50 for the same row counts (the framework's own: sklearn ``predict``,
the Booster's ``inplace_predict``, the module's forward pass), and the issue's targets:

* concurrency 16: lockgate >= 2x MLServer's requests/s, with a p99 no higher than its;
* concurrency 1: lockgate's p50 within 1 ms of the bare ``predict`` call.

Peers run from their own virtual environments (``bench/.venv-mlserver``,
``bench/.venv-mlflow``; see bench/README.md) and are skipped, with the reason printed, when
missing. Run: ``python bench/serving.py [--model xgboost] [--duration 5]
[--servers lockgate,mlserver]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import serving_servers as servers
import serving_wrk as wrk
from serving_model import MODELS, BenchModel, bare_predict_p50_ms, make_table, train

ALL_SERVERS = ("lockgate", "lockgate-nobatch", "mlserver", "mlflow")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=MODELS, default="sklearn", help="what to serve")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per cell")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load per body first")
    parser.add_argument("--concurrency", default="1,16,64", help="wrk connections, a,b,c")
    parser.add_argument("--rows", default="1,100", help="rows per request, a,b")
    parser.add_argument("--servers", default=",".join(ALL_SERVERS), help="subset, a,b")
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    parser.add_argument(
        "--lockgate-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for lockgate serve, e.g. LOCKGATE_SERVE_LOG_SAMPLE_RATE=0",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every server this many times, interleaved (A, B, A, B); medians shown",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    concurrency = [int(c) for c in args.concurrency.split(",")]
    row_counts = [int(r) for r in args.rows.split(",")]
    wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(ALL_SERVERS))
    if unknown:
        parser.error(f"unknown servers {unknown}; servers are {list(ALL_SERVERS)}")
    if wrk.find_wrk() is None:
        print("wrk not found: apt-get install -y wrk (see bench/README.md)", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="lockgate-serving-bench-"))
    try:
        return _bench(args, work, wanted, concurrency, row_counts)
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _bench(
    args: argparse.Namespace,
    work: Path,
    wanted: list[str],
    concurrency: list[int],
    row_counts: list[int],
) -> int:
    print(f"cpus: {os.cpu_count()}; servers on core {args.server_core}, wrk on core "
          f"{args.client_core}; {args.duration:g}s per cell; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")  # fmt: skip
    model = train(args.model)
    print(f"model: {model.description}")
    bodies_X = {rows: make_table(rows, seed=7)[0] for rows in row_counts}
    check_X = make_table(100, seed=11)[0]
    expected = [str(v) for v in model.predict(check_X)]

    candidates: list[servers.Server] = []
    skipped: dict[str, str] = {}
    model_file = model.save_for_lockgate(work)
    if {"lockgate", "lockgate-nobatch"} & set(wanted):
        project = servers.lockgate_project(model_file, model.name, work / "lg")
        if "lockgate" in wanted:
            candidates.append(servers.lockgate_server(project, model.name))
        if "lockgate-nobatch" in wanted:
            candidates.append(servers.lockgate_server(project, model.name, batching=False))
        extra = dict(item.split("=", 1) for item in args.lockgate_env)
        for server in candidates:
            server.env.update(extra)
            if extra:
                server.note += f"; {' '.join(args.lockgate_env)}"
    if "mlserver" in wanted:
        found = servers.mlserver_server(model, model_file, work / "mlserver")
        _add(found, "mlserver", candidates, skipped)
    if "mlflow" in wanted:
        _add(_mlflow(model, work), "mlflow", candidates, skipped)
    for name, reason in skipped.items():
        print(f"{name}: skipped: {reason}")

    runs: dict[tuple[str, int, int], list[wrk.Result]] = {}
    bare_runs: dict[int, list[float]] = {rows: [] for rows in row_counts}
    failed: list[str] = []
    for round_no in range(1, args.rounds + 1):
        if args.rounds > 1:
            print(f"round {round_no}/{args.rounds}; load average "
                  f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")  # fmt: skip
        for rows, ms in _bare_predict(model, row_counts, args.server_core).items():
            bare_runs[rows].append(ms)
            print(f"bare predict, {rows:>3} row(s), in-process p50: {ms:.3f} ms")
        for server in candidates:
            if server.name in failed:
                continue
            if not _measure(server, args, work, bodies_X, check_X, expected, concurrency, runs):
                failed.append(server.name)

    results = {key: wrk.median(found) for key, found in runs.items()}
    bare = {rows: float(np.median(found)) for rows, found in bare_runs.items()}
    _print_table(results, bare, runs if args.rounds > 1 else None)
    _print_targets(results, bare, skipped, row_counts)
    if failed:
        print(f"failed: {', '.join(failed)} (see above)")
    return 1 if failed else 0


def _add(
    found: servers.Server | str,
    name: str,
    candidates: list[servers.Server],
    skipped: dict[str, str],
) -> None:
    if isinstance(found, str):
        skipped[name] = found
    else:
        candidates.append(found)


def _mlflow(model: BenchModel, work: Path) -> servers.Server | str:
    if model.kind != "sklearn":
        return f"--model {model.kind}: the MLflow peer is wired for the sklearn model only"
    import joblib

    joblib_file = work / "model.joblib"
    joblib.dump(model.fitted, joblib_file)
    try:
        return servers.mlflow_server(joblib_file, work / "mlflow")
    except RuntimeError as exc:
        return str(exc)


def _bare_predict(model: BenchModel, row_counts: list[int], core: int) -> dict[int, float]:
    """The floor: the bare predict in this process, on the core the servers will use."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        return {rows: bare_predict_p50_ms(model, rows) for rows in row_counts}
    finally:
        os.sched_setaffinity(0, before)


def _measure(
    server: servers.Server,
    args: argparse.Namespace,
    work: Path,
    bodies_X: dict[int, np.ndarray],
    check_X: np.ndarray,
    expected: list[str],
    concurrency: list[int],
    runs: dict[tuple[str, int, int], list[wrk.Result]],
) -> bool:
    """Start, check, load and stop one server; False when it failed or answered wrong."""
    slug = server.name.split()[0] + ("-nobatch" if "no batching" in server.name else "")
    started = time.perf_counter()
    running = servers.Running(server, args.server_core, work / f"{slug}.log")
    try:
        running.wait_ready()
        ready_s = time.perf_counter() - started
        answer = server.decode(running.post(server.encode(check_X)))
        same = sum(a == b for a, b in zip(answer, expected, strict=False))
        verdict = "ok" if same == len(expected) == len(answer) else "MISMATCH"
        print(f"check {server.name}: {same}/{len(expected)} predictions equal the in-process "
              f"model's ({verdict}); ready in {ready_s:.1f}s; {running.workers()} process(es) "
              f"on core {args.server_core}; {server.note}")  # fmt: skip
        if verdict != "ok":
            return False
        scripts = {
            rows: wrk.write_script(server.encode(X), work, f"{slug}-{rows}")
            for rows, X in bodies_X.items()
        }
        if args.warmup > 0:
            for script in scripts.values():
                wrk.run(server.infer_url, script, connections=max(concurrency),
                        seconds=args.warmup, core=args.client_core)  # fmt: skip
        for rows, script in scripts.items():
            for connections in concurrency:
                cpu_before = running.cpu_seconds()
                found = wrk.run(
                    server.infer_url,
                    script,
                    connections=connections,
                    seconds=args.duration,
                    core=args.client_core,
                )
                if found.requests:
                    cpu_s = running.cpu_seconds() - cpu_before
                    found.cpu_ms = cpu_s * 1000.0 / found.requests
                runs.setdefault((server.name, connections, rows), []).append(found)
    except (RuntimeError, OSError) as exc:
        print(f"{server.name}: failed: {exc}")
        return False
    finally:
        running.stop()
    return True


def _print_table(
    results: dict[tuple[str, int, int], wrk.Result],
    bare: dict[int, float],
    runs: dict[tuple[str, int, int], list[wrk.Result]] | None,
) -> None:
    """One row per cell; with several rounds the figures are medians over the rounds (the
    errors summed) and the last columns list each round's requests/s and p99. ``cpu ms/req``: the
    server's CPU time (all its processes) per request served."""
    print()
    header = (
        f"{'server':<24}{'conc':>5}{'rows':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'cpu ms/req':>12}"
    )
    if runs is not None:
        header += "  req/s by round  p99 ms by round"
    print(header)
    print("-" * len(header))
    for key, r in sorted(results.items(), key=lambda item: (item[0][2], item[0][1])):
        name, connections, rows = key
        by_round = ""
        if runs is not None:
            rps = "/".join(f"{x.rps:.0f}" for x in runs[key])
            p99 = "/".join(f"{x.p99_ms:.1f}" for x in runs[key])
            by_round = f"  {rps:<15}  {p99}"
        cpu = "-" if r.cpu_ms is None else f"{r.cpu_ms:.3f}"
        print(f"{name:<24}{connections:>5}{rows:>6}{r.rps:>10.0f}{r.p50_ms:>9.2f}"
              f"{r.p99_ms:>9.2f}{r.errors:>8}{cpu:>12}{by_round}")  # fmt: skip
    for rows, ms in bare.items():
        print(f"{'bare predict':<24}{'-':>5}{rows:>6}{'-':>10}{ms:>9.2f}"
              f"{'-':>9}{'-':>8}{ms:>12.3f}")  # fmt: skip


def _print_targets(
    results: dict[tuple[str, int, int], wrk.Result],
    bare: dict[int, float],
    skipped: dict[str, str],
    row_counts: list[int],
) -> None:
    print()
    print("targets:")
    rows_seen = sorted(row_counts)
    for rows in rows_seen:
        ours = results.get(("lockgate", 16, rows))
        peer = results.get(("mlserver", 16, rows))
        what = f"c16, {rows} row(s): req/s >= 2x MLServer and p99 <= MLServer's"
        if ours is None or peer is None:
            missing = "mlserver" if peer is None else "lockgate"
            why = skipped.get(missing, f"{missing} not measured")
            print(f"  {what}: not evaluated ({why})")
            continue
        ratio = ours.rps / peer.rps if peer.rps else float("inf")
        met = ratio >= 2.0 and ours.p99_ms <= peer.p99_ms and ours.errors == 0
        print(f"  {what}: {'MET' if met else 'MISSED'} ({ours.rps:.0f} vs {peer.rps:.0f} req/s "
              f"= {ratio:.2f}x; p99 {ours.p99_ms:.2f} vs {peer.p99_ms:.2f} ms; "
              f"errors {ours.errors})")  # fmt: skip
    for rows in rows_seen:
        ours = results.get(("lockgate", 1, rows))
        what = f"c1, {rows} row(s): p50 within 1 ms of bare predict"
        if ours is None or rows not in bare:
            print(f"  {what}: not evaluated (lockgate not measured)")
            continue
        gap = ours.p50_ms - bare[rows]
        met = gap <= 1.0
        cpu = "" if ours.cpu_ms is None else f"; server CPU {ours.cpu_ms:.3f} ms per request"
        print(f"  {what}: {'MET' if met else 'MISSED'} (p50 {ours.p50_ms:.2f} ms vs bare "
              f"{bare[rows]:.3f} ms: +{gap:.2f} ms{cpu})")  # fmt: skip
    pairs = []
    for connections in (16, 64):
        for rows in rows_seen:
            on = results.get(("lockgate", connections, rows))
            off = results.get(("lockgate (no batching)", connections, rows))
            if on is not None and off is not None:
                pairs.append(f"c{connections}/{rows} row(s): {on.rps:.0f} vs {off.rps:.0f}")
    if pairs:
        print(f"  batching (default on vs off, req/s): {', '.join(pairs)}")


if __name__ == "__main__":
    sys.exit(main())
