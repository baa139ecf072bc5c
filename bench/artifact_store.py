"""The cost of the artifact store: the penguins demo with its artifacts on the local store
(the default: staging and one rename), on the fsspec store over ``file://`` (upload by
copy, marker, working copies cached by fingerprint) and on the fsspec store over S3
(moto's S3 server on 127.0.0.1 through s3fs: the protocol, not a network's latency).

Each round runs, for each store in turn (A, B, C, A, B, C...), the demo pipeline in a
fresh project with a fresh metadata store and artifact root: a full run, then a re-run
(infer_schema runs again, as it reads the curated schema the first run wrote; every other
step comes from the cache). Prints the median and the spread of each, in one process.
The infra-validation step is left out: it starts a model server, the same for every store.
Run: ``python bench/artifact_store.py [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from timing import median_of

TEMPLATE = Path(__file__).resolve().parents[1] / "lockgate" / "templates" / "penguins"
BUCKET = "lockgate-bench"


def project_copy(target: Path) -> Path:
    """The penguins template without its infra_validate step."""
    shutil.copytree(TEMPLATE, target, ignore=shutil.ignore_patterns("__pycache__"))
    pipeline = target / "pipeline.py"
    source = re.sub(
        r"\n    infra = infra_validate\(.*?\n    \)\n", "\n", pipeline.read_text(), flags=re.S
    )
    source = source.replace("\n        infra_blessing=infra.outputs.infra_blessing,", "")
    pipeline.write_text(source.replace("(evaluation, infra, pushed)", "(evaluation, pushed)"))
    return target


def start_s3() -> tuple[Any, dict[str, Any]]:
    import logging
    import socket

    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=BUCKET)
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
    return server, options


def one_round(kind: str, work: Path, options: dict[str, Any]) -> tuple[float, float]:
    from lockgate import run_pipeline
    from lockgate.cli.project import load_pipeline
    from lockgate.metadata.store import SqlMetadataStore

    project = project_copy(work / "project")
    store = SqlMetadataStore(f"sqlite:///{work / 'metadata.db'}")
    cache = work / "cache"
    if kind == "local":  # a path, as lockgate.toml gives it
        artifacts: Any = work / "artifacts"
    else:  # not imported for --local-only: runs against a lockgate without it
        from lockgate.core.fsspec_store import FsspecArtifactStore

        if kind == "fsspec file://":
            artifacts = FsspecArtifactStore((work / "artifacts").as_uri(), cache_dir=cache)
        else:
            artifacts = FsspecArtifactStore(
                f"s3://{BUCKET}/{work.name}", storage_options=options, cache_dir=cache
            )
    times = []
    try:
        for _ in range(2):
            started = time.perf_counter()
            result = run_pipeline(
                load_pipeline(project / "pipeline.py"),
                store=store,
                artifact_root=artifacts,
                project_dir=project,
            )
            times.append(time.perf_counter() - started)
            if not result.ok:
                raise SystemExit(f"{kind}: the demo failed: {result.error}")
    finally:
        store.close()
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--local-only", action="store_true", help="the local store alone")
    args = parser.parse_args()
    kinds = ["local"] if args.local_only else ["local", "fsspec file://", "fsspec s3 (moto)"]
    figures: dict[tuple[str, str], list[float]] = {}
    server, options = (None, {}) if args.local_only else start_s3()
    os.environ.setdefault("LOCKGATE_ARTIFACT_STORAGE_OPTIONS", json.dumps(options))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.repeat + 1):  # round 0 warms imports up, and is not counted
                for k, kind in enumerate(kinds):
                    work = Path(tmp) / f"r{i}-{k}"
                    work.mkdir()
                    full, rerun = one_round(kind, work, options)
                    if i > 0:
                        figures.setdefault((kind, "full run"), []).append(full)
                        figures.setdefault((kind, "re-run"), []).append(rerun)
    finally:
        if server is not None:
            server.stop()
    print(f"penguins demo, {args.repeat} rounds interleaved; median (min-max) seconds")
    for what in ("full run", "re-run"):
        base = median_of(figures[("local", what)])
        for kind in kinds:
            values = figures[(kind, what)]
            median = median_of(values)
            print(
                f"  {what:8}  {kind:17} {median:6.2f}  ({min(values):.2f}-{max(values):.2f})"
                f"  {median / base:4.2f}x local"
            )


if __name__ == "__main__":
    main()
