"""SIGKILL in the middle of a step: nothing half-written is registered, the next run completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from lockgate.metadata.store import SqlMetadataStore

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from lockgate import Examples, Input, Output, Pipeline, Statistics, component, run_pipeline
    from lockgate.metadata.store import SqlMetadataStore

    @component
    def make(examples: Output[Examples]) -> None:
        Path(examples.uri, "rows.txt").write_text("1\\n2\\n")

    @component
    def slow(examples: Input[Examples], statistics: Output[Statistics]) -> None:
        Path(statistics.uri, "part.json").write_text('{"half": ')
        if os.environ.get("HANG") == "1":
            Path(sys.argv[2], "started").write_text("x")
            time.sleep(120)
        Path(statistics.uri, "part.json").write_text('{"rows": 2}')

    first = make()
    pipeline = Pipeline("crash", [first, slow(examples=first.outputs.examples)])
    store = SqlMetadataStore(sys.argv[1])
    result = run_pipeline(pipeline, store=store, artifact_root=Path(sys.argv[2]) / "artifacts")
    print(result.status)
    """
)


def test_sigkill_mid_step_leaves_no_half_artifact_and_the_next_run_completes(
    store_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "crash_pipeline.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "HANG": "1"}
    process = subprocess.Popen([sys.executable, str(script), store_url, str(tmp_path)], env=env)
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert process.poll() is None, "the pipeline process ended before the step started"
        assert time.monotonic() < deadline, "the step did not start within 60 s"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)

    store = SqlMetadataStore(store_url)
    try:
        run = store.list_runs()[0]
        executions = {e.step_name: e for e in store.run_executions(run.id)}
        assert executions["make"].status == "complete"
        assert executions["slow"].status == "running"  # not completed: the process died
        assert store.execution_artifacts(executions["slow"].id, "output") == {}
        assert store.artifacts_of_type("Statistics") == []
        assert [e.id for e in store.mark_abandoned()] == [executions["slow"].id]
        assert store.get_execution(executions["slow"].id).status == "abandoned"
        assert store.get_run(run.id).status == "abandoned"
    finally:
        store.close()

    done = subprocess.run(
        [sys.executable, str(script), store_url, str(tmp_path)],
        env={**os.environ, "HANG": "0"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "complete"
    store = SqlMetadataStore(store_url)
    try:
        (stats,) = store.artifacts_of_type("Statistics")
        assert Path(stats.uri, "part.json").read_text() == '{"rows": 2}'
        latest = store.list_runs()[0]
        statuses = {e.step_name: e.status for e in store.run_executions(latest.id)}
        assert statuses == {"make": "cached", "slow": "complete"}
    finally:
        store.close()
