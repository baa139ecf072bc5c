"""Serving throughput and latency: lockgate against the floor, MLServer and ``mlflow models
serve``, cell by cell interleaved.

The same classifier (``serving_model.py``, 20 numeric features; ``--model sklearn``:
gradient boosting, ``xgboost``: an XGBClassifier, ``torch_mlp``: lockgate's own PyTorch MLP)
is served, each server pinned to one core (``taskset -c 0``: its workers too) and driven by
wrk pinned to another (``taskset -c 1``), by:

* ``lockgate``: ``lockgate serve`` with its default settings (request log on at 10 %);
* ``floor``: a bare Starlette + orjson app that calls ``predict`` inline
  (``serving_floor.py``): the floor for a Python server;
* ``mlserver-tuned``: ``mlserver start`` as a user chasing speed deploys it, inference in the
  HTTP process and the debug log off (``MLSERVER_PARALLEL_WORKERS=0``,
  ``MLSERVER_DEBUG=false``);
* ``mlserver``: ``mlserver start`` with its defaults (an inference worker process);
* ``mlflow``: ``mlflow models serve --env-manager local`` (sklearn only; matrix layout only).

Every server is started once and checked (its answer to 100 rows against the in-process
model); then every cell — rows per request x connections x body layout (one tensor per
feature, or one ``[n, 20]`` tensor; see ``serving_servers.py``) — is measured for each
server in turn, ``--rounds`` times (the order rotating), so that the machine's drift over
minutes hits every server alike; the table shows medians. lockgate's TF-Serving route
(``:predict`` with ``instances``) is measured beside its V2 route. Last, the request-log
flush: lockgate logging every request with a flush every ``--flush-interval`` seconds,
against lockgate with the log off, each ``--flush-seconds`` long at one connection,
interleaved: the longest request of each.

Prints the table and the issue's targets (MET / MISSED). Peers run from their own virtual
environments (``bench/.venv-mlserver``, ``bench/.venv-mlflow``; see bench/README.md) and
are skipped, with the reason printed, when missing. Run: ``python bench/serving.py
[--rounds 3] [--duration 5] [--servers lockgate,floor,mlserver-tuned]``.
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

ALL_SERVERS = ("lockgate", "floor", "mlserver-tuned", "mlserver", "mlflow", "lockgate-nobatch")
DEFAULT_SERVERS = ALL_SERVERS[:5]
Cell = tuple[int, int, str]  # rows, connections, layout
Key = tuple[str, int, int, str]  # server, rows, connections, layout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=MODELS, default="sklearn", help="what to serve")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per cell")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load per body first")
    parser.add_argument("--rounds", type=int, default=3, help="times each cell is measured")
    parser.add_argument("--concurrency", default="1,16", help="wrk connections, a,b")
    parser.add_argument("--rows", default="1,100", help="rows per request, a,b")
    parser.add_argument("--layouts", default=",".join(servers.LAYOUTS), help="body layouts")
    parser.add_argument("--servers", default=",".join(DEFAULT_SERVERS), help="subset, a,b")
    parser.add_argument("--flush-seconds", type=float, default=30.0,
                        help="length of each request-log flush run (0: skip)")  # fmt: skip
    parser.add_argument("--flush-rounds", type=int, default=3,
                        help="request-log flush runs of each kind, interleaved")  # fmt: skip
    parser.add_argument("--flush-interval", type=float, default=3.0,
                        help="seconds between request-log flushes in the flush runs")  # fmt: skip
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    parser.add_argument(
        "--lockgate-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for lockgate serve, e.g. LOCKGATE_SERVE_LOG_SAMPLE_RATE=0",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(ALL_SERVERS))
    if unknown:
        parser.error(f"unknown servers {unknown}; servers are {list(ALL_SERVERS)}")
    if wrk.find_wrk() is None:
        print("wrk not found: apt-get install -y wrk (see bench/README.md)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="lockgate-serving-bench-"))
    try:
        return _bench(args, work, wanted)
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _bench(args: argparse.Namespace, work: Path, wanted: list[str]) -> int:
    concurrency = [int(c) for c in args.concurrency.split(",")]
    row_counts = [int(r) for r in args.rows.split(",")]
    layouts = [x.strip() for x in args.layouts.split(",") if x.strip()]
    print(f"cpus: {os.cpu_count()}; servers on core {args.server_core}, wrk on core "
          f"{args.client_core}; {args.duration:g}s per cell, {args.rounds} round(s); load "
          f"average {_load()}")  # fmt: skip
    model = train(args.model)
    print(f"model: {model.description}")
    check_X = make_table(100, seed=11)[0]
    expected = [str(v) for v in model.predict(check_X)]
    candidates, skipped = _servers(args, model, work, wanted)
    for name, reason in skipped.items():
        print(f"{name}: skipped: {reason}")

    running: dict[str, servers.Running] = {}
    try:
        for server in candidates:
            started = _start(server, args, work, check_X, expected)
            if started is not None:
                running[server.name] = started
        if not running:
            print("no server started; nothing to measure")
            return 1
        cells: list[Cell] = [
            (rows, connections, layout)
            for rows in row_counts
            for connections in concurrency
            for layout in layouts
        ]
        if "lockgate" in running:
            cells += [(rows, 16, "v1") for rows in row_counts]
        scripts = _scripts(running, cells, work)
        _warm(running, scripts, args)
        runs: dict[Key, list[wrk.Result]] = {}
        bare_runs: dict[int, list[float]] = {rows: [] for rows in row_counts}
        for round_no in range(args.rounds):
            for rows, ms in _bare_predict(model, row_counts, args.server_core).items():
                bare_runs[rows].append(ms)
            print(f"round {round_no + 1}/{args.rounds}; load average {_load()}")
            order = list(running.values())
            order = order[round_no % len(order) :] + order[: round_no % len(order)]
            for cell in cells:
                for one in order:
                    _cell(one, cell, scripts, args, runs)
    finally:
        for one in running.values():
            one.stop()
    results = {key: wrk.median(found) for key, found in runs.items()}
    bare = {rows: float(np.median(found)) for rows, found in bare_runs.items()}
    _print_table(results, bare, runs)
    flush = _flush_runs(args, model, work) if args.flush_seconds > 0 else None
    _print_targets(results, skipped, row_counts, layouts, flush)
    return 0


def _servers(
    args: argparse.Namespace, model: BenchModel, work: Path, wanted: list[str]
) -> tuple[list[servers.Server], dict[str, str]]:
    candidates: list[servers.Server] = []
    skipped: dict[str, str] = {}
    model_file = model.save_for_lockgate(work)
    extra = dict(item.split("=", 1) for item in args.lockgate_env)
    if {"lockgate", "lockgate-nobatch"} & set(wanted):
        project = servers.lockgate_project(model_file, model.name, work / "lg")
        for name in ("lockgate", "lockgate-nobatch"):
            if name in wanted:
                server = servers.lockgate_server(
                    project, model.name, batching=name == "lockgate", env=extra
                )
                if extra:
                    server.note += f"; {' '.join(args.lockgate_env)}"
                candidates.append(server)
    joblib_file = work / "model.joblib"
    if {"floor", "mlflow"} & set(wanted):
        import joblib

        joblib.dump(model.fitted, joblib_file)
    if "floor" in wanted:
        candidates.append(servers.floor_server(joblib_file, model.name))
    for name, tuned in (("mlserver-tuned", True), ("mlserver", False)):
        if name in wanted:
            found = servers.mlserver_server(model, model_file, work / name, tuned=tuned)
            _add(found, name, candidates, skipped)
    if "mlflow" in wanted:
        _add(_mlflow(model, joblib_file, work), "mlflow", candidates, skipped)
    return candidates, skipped


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


def _mlflow(model: BenchModel, joblib_file: Path, work: Path) -> servers.Server | str:
    if model.kind != "sklearn":
        return f"--model {model.kind}: the MLflow peer is wired for the sklearn model only"
    try:
        return servers.mlflow_server(joblib_file, work / "mlflow")
    except RuntimeError as exc:
        return str(exc)


def _start(
    server: servers.Server,
    args: argparse.Namespace,
    work: Path,
    check_X: np.ndarray,
    expected: list[str],
) -> servers.Running | None:
    """Start one server and check its answer; None (and stopped) when it failed."""
    started = time.perf_counter()
    running = servers.Running(server, args.server_core, work / f"{server.name}.log")
    try:
        running.wait_ready()
        ready_s = time.perf_counter() - started
        layout = "matrix" if server.request(check_X, "matrix") is not None else "features"
        request = server.request(check_X, layout)
        assert request is not None
        answer = server.decode(running.post(*request))
        same = sum(a == b for a, b in zip(answer, expected, strict=False))
        verdict = "ok" if same == len(expected) == len(answer) else "MISMATCH"
        print(f"check {server.name}: {same}/{len(expected)} predictions equal the in-process "
              f"model's ({verdict}); ready in {ready_s:.1f}s; {running.workers()} process(es) "
              f"on core {args.server_core}; {server.note}")  # fmt: skip
        if verdict == "ok":
            return running
    except (RuntimeError, OSError) as exc:
        print(f"{server.name}: failed: {exc}")
    running.stop()
    return None


def _scripts(
    running: dict[str, servers.Running], cells: list[Cell], work: Path
) -> dict[tuple[str, int, str], tuple[str, Path]]:
    """(server, rows, layout) -> (url, wrk script) for every body a server takes."""
    bodies = {rows: make_table(rows, seed=7)[0] for rows, _, _ in cells}
    scripts: dict[tuple[str, int, str], tuple[str, Path]] = {}
    for name, one in running.items():
        for rows, _, layout in cells:
            request = one.server.request(bodies[rows], layout)
            if request is not None and (name, rows, layout) not in scripts:
                path, body = request
                script = wrk.write_script(body, work, f"{name}-{rows}-{layout}")
                scripts[(name, rows, layout)] = (one.server.url(path), script)
    return scripts


def _warm(
    running: dict[str, servers.Running],
    scripts: dict[tuple[str, int, str], tuple[str, Path]],
    args: argparse.Namespace,
) -> None:
    if args.warmup <= 0:
        return
    for (name, _, _), (url, script) in scripts.items():
        if name in running:
            wrk.run(url, script, connections=16, seconds=args.warmup, core=args.client_core)


def _cell(
    one: servers.Running,
    cell: Cell,
    scripts: dict[tuple[str, int, str], tuple[str, Path]],
    args: argparse.Namespace,
    runs: dict[Key, list[wrk.Result]],
) -> None:
    rows, connections, layout = cell
    found_script = scripts.get((one.server.name, rows, layout))
    if found_script is None:
        return
    url, script = found_script
    cpu_before = one.cpu_seconds()
    found = wrk.run(
        url, script, connections=connections, seconds=args.duration, core=args.client_core
    )
    if found.requests:
        found.cpu_ms = (one.cpu_seconds() - cpu_before) * 1000.0 / found.requests
    runs.setdefault((one.server.name, rows, connections, layout), []).append(found)


def _bare_predict(model: BenchModel, row_counts: list[int], core: int) -> dict[int, float]:
    """The bare predict in this process, on the core the servers use."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        return {rows: bare_predict_p50_ms(model, rows) for rows in row_counts}
    finally:
        os.sched_setaffinity(0, before)


def _flush_runs(
    args: argparse.Namespace, model: BenchModel, work: Path
) -> dict[str, list[wrk.Result]]:
    """lockgate logging every request (a flush every ``--flush-interval`` s) against
    lockgate with the log off, one connection, one row, interleaved (``--flush-rounds``)."""
    (work / "flush-model").mkdir(exist_ok=True)
    model_file = model.save_for_lockgate(work / "flush-model")
    project = servers.lockgate_project(model_file, model.name, work / "lg-flush")
    settings = {
        "logging": {
            "LOCKGATE_SERVE_LOG_SAMPLE_RATE": "1",
            "LOCKGATE_SERVE_LOG_FLUSH_INTERVAL_S": f"{args.flush_interval:g}",
            "LOCKGATE_SERVE_LOG_FLUSH_ROWS": "1000000",
        },
        "log off": {"LOCKGATE_SERVE_LOG_SAMPLE_RATE": "0"},
    }
    X = make_table(1, seed=7)[0]
    found: dict[str, list[wrk.Result]] = {}
    print(f"\nrequest-log flush: {args.flush_seconds:g} s runs, 1 connection, 1 row, log on "
          f"(every request, a flush every {args.flush_interval:g} s) and off, interleaved")  # fmt: skip
    for _ in range(args.flush_rounds):
        for label, env in settings.items():
            server = servers.lockgate_server(project, model.name, env=env)
            running = servers.Running(server, args.server_core, work / f"flush-{label}.log")
            try:
                running.wait_ready()
                request = server.request(X, "features")
                assert request is not None
                url = server.url(request[0])
                script = wrk.write_script(request[1], work, f"flush-{label.replace(' ', '-')}")
                wrk.run(url, script, connections=1, seconds=2, core=args.client_core)
                result = wrk.run(url, script, connections=1, seconds=args.flush_seconds,
                                 core=args.client_core)  # fmt: skip
                found.setdefault(label, []).append(result)
                print(f"  {label:<8} {result.rps:>7.0f} req/s  p50 {result.p50_ms:.2f} ms  "
                      f"p99 {result.p99_ms:.2f} ms  longest {result.max_ms:.2f} ms")  # fmt: skip
            finally:
                running.stop()
    files = list((project / ".lockgate").rglob("part-0.parquet"))
    print(f"  request-log files written: {len(files)}")
    return found


def _print_table(
    results: dict[Key, wrk.Result], bare: dict[int, float], runs: dict[Key, list[wrk.Result]]
) -> None:
    """One row per server and cell: medians over the rounds (errors summed), then each
    round's requests/s. ``cpu ms/req``: the server's CPU time (all its processes) per
    request served."""
    print()
    header = (
        f"{'server':<16}{'rows':>5}{'conc':>5}{'layout':>10}{'req/s':>9}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'errors':>7}{'cpu ms/req':>11}  req/s by round"
    )
    print(header)
    print("-" * len(header))
    order = {name: i for i, name in enumerate(ALL_SERVERS)}
    for key in sorted(results, key=lambda k: (k[1], k[2], k[3], order[k[0]])):
        name, rows, connections, layout = key
        r = results[key]
        by_round = "/".join(f"{x.rps:.0f}" for x in runs[key])
        cpu = "-" if r.cpu_ms is None else f"{r.cpu_ms:.3f}"
        print(f"{name:<16}{rows:>5}{connections:>5}{layout:>10}{r.rps:>9.0f}{r.p50_ms:>9.2f}"
              f"{r.p99_ms:>9.2f}{r.errors:>7}{cpu:>11}  {by_round}")  # fmt: skip
    for rows, ms in bare.items():
        print(f"{'bare predict':<16}{rows:>5}{'-':>5}{'-':>10}{'-':>9}{ms:>9.3f}")


def _print_targets(
    results: dict[Key, wrk.Result],
    skipped: dict[str, str],
    row_counts: list[int],
    layouts: list[str],
    flush: dict[str, list[wrk.Result]] | None,
) -> None:
    print("\ntargets:")

    def verdict(met: bool) -> str:
        return "MET" if met else "MISSED"

    for layout in layouts:
        for rows in sorted(row_counts):
            ours = results.get(("lockgate", rows, 16, layout))
            floor = results.get(("floor", rows, 16, layout))
            tuned = results.get(("mlserver-tuned", rows, 16, layout))
            what = f"c16, {rows} row(s), {layout}"
            if ours is None:
                print(f"  {what}: not evaluated (lockgate not measured)")
                continue
            if floor is not None:
                ratio = ours.rps / floor.rps
                print(f"  {what}: req/s >= 0.85x the floor's: {verdict(ratio >= 0.85)} "
                      f"({ours.rps:.0f} vs {floor.rps:.0f} = {ratio:.2f}x)")  # fmt: skip
            else:
                print(f"  {what}: against the floor: not evaluated (floor not measured)")
            if tuned is not None:
                ratio = ours.rps / tuned.rps
                met = ratio >= 1.7 and ours.p99_ms <= tuned.p99_ms and ours.errors == 0
                print(f"  {what}: req/s >= 1.7x tuned MLServer's, p99 no higher: "
                      f"{verdict(met)} ({ours.rps:.0f} vs {tuned.rps:.0f} = {ratio:.2f}x; p99 "
                      f"{ours.p99_ms:.2f} vs {tuned.p99_ms:.2f} ms; errors {ours.errors})")  # fmt: skip
            else:
                why = skipped.get("mlserver-tuned", "mlserver-tuned not measured")
                print(f"  {what}: against tuned MLServer: not evaluated ({why})")
        ours = results.get(("lockgate", 1, 1, layout))
        floor = results.get(("floor", 1, 1, layout))
        if ours is not None and floor is not None:
            gap = ours.p50_ms - floor.p50_ms
            print(f"  c1, 1 row, {layout}: p50 within 0.15 ms of the floor's: "
                  f"{verdict(gap <= 0.15)} ({ours.p50_ms:.3f} vs {floor.p50_ms:.3f} ms: "
                  f"{gap:+.3f} ms)")  # fmt: skip
    for rows in sorted(row_counts):
        v1 = results.get(("lockgate", rows, 16, "v1"))
        v2 = results.get(("lockgate", rows, 16, "features"))
        if v1 is not None and v2 is not None and v1.cpu_ms and v2.cpu_ms:
            ratio = v1.cpu_ms / v2.cpu_ms
            print(f"  c16, {rows} row(s): TF-Serving route CPU within 1.2x the V2 route's: "
                  f"{verdict(ratio <= 1.2)} ({v1.cpu_ms:.3f} vs {v2.cpu_ms:.3f} ms per request "
                  f"= {ratio:.2f}x)")  # fmt: skip
    if flush:
        # every run holds several flushes, so a stall they cause is in each run's longest
        # request; the smallest of those over the runs drops a stall from elsewhere
        on = min(r.max_ms for r in flush["logging"])
        off = min(r.max_ms for r in flush["log off"])
        print(f"  request-log flush delays no request by more than 2 ms: "
              f"{verdict(on - off <= 2.0)} (longest request {on:.2f} ms with flushes, "
              f"{off:.2f} ms with the log off, the smaller of the runs': {on - off:+.2f} ms)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
