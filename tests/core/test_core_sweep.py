"""`kill -9` at the worst moments: inside the push's registration, and mid-step while another
run starts. Nothing is lost, nothing half-done is kept, nothing live is swept away."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from support import lockgate

from lockgate import Examples, Output, Pipeline, component, run_pipeline
from lockgate.errors import NotFoundError
from lockgate.metadata.registry import Registry
from lockgate.metadata.store import SqlMetadataStore

# The penguins pipeline with its real push step, paused inside the transaction that
# registers the pushed version (after the version row is written, before the commit).
PAUSED_PUSH = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from lockgate import run_pipeline
    from lockgate.cli.project import load_pipeline
    from lockgate.metadata.store import SqlMetadataStore

    project, url = Path(sys.argv[1]), sys.argv[2]
    pipeline = load_pipeline(project / "pipeline.py")
    push = pipeline.steps["push"].component
    register = push.on_publish

    def register_then_hang(context, outputs, params, transaction):
        register(context, outputs, params, transaction)
        (project / "registering").write_text(outputs["pushed_model"].uri)
        time.sleep(120)

    push.on_publish = register_then_hang
    store = SqlMetadataStore(url)
    result = run_pipeline(
        pipeline, store=store, artifact_root=project / ".lockgate" / "artifacts",
        project_dir=project,
    )
    print(result.status, result.error)
    """
)


def _wait_for(path: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        assert process.poll() is None, "the pipeline process ended before the pause"
        assert time.monotonic() < deadline, f"{path.name} did not appear within 120 s"
        time.sleep(0.05)


def test_kill_inside_push_registration_leaves_no_cached_push_and_the_next_run_registers(
    store_url: str, penguins_project: Path, tmp_path: Path
) -> None:
    script = tmp_path / "paused_push.py"
    script.write_text(PAUSED_PUSH)
    process = subprocess.Popen([sys.executable, str(script), str(penguins_project), store_url])
    marker = penguins_project / "registering"
    _wait_for(marker, process)
    orphan = Path(marker.read_text())
    assert orphan.is_dir()  # moved into place; its store row is not committed
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)

    store = SqlMetadataStore(store_url)
    try:
        with pytest.raises(NotFoundError, match="no model named 'penguins'"):
            Registry(store).versions("penguins")
        assert store.artifacts_of_type("PushedModel") == []
    finally:
        store.close()

    env = {**os.environ, "LOCKGATE_STORE_URL": store_url}
    again = lockgate("run", cwd=penguins_project, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "push                complete" in again.stdout  # not served from a cache
    assert "Pushed: yes, model 'penguins' version 1, now in production" in again.stdout
    assert not orphan.exists()  # the killed run's unregistered folder was swept
    staging = penguins_project / ".lockgate" / "artifacts" / ".tmp"
    assert list(staging.iterdir()) == []  # and its staging session too

    store = SqlMetadataStore(store_url)
    try:
        registry = Registry(store)
        (version,) = registry.versions("penguins")
        assert version.aliases == ["production"]
        assert Path(version.artifact.uri).is_dir()
    finally:
        store.close()
    cached = lockgate("run", cwd=penguins_project, env=env)
    assert "no change, model 'penguins' version 1 (still in production)" in cached.stdout


HANGING_STEP = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from lockgate import Examples, Output, Pipeline, component, run_pipeline
    from lockgate.metadata.store import SqlMetadataStore

    @component
    def hang(examples: Output[Examples]) -> None:
        Path(examples.uri, "rows.txt").write_text("1\\n")
        Path(sys.argv[2], "started").write_text(examples.uri)
        time.sleep(120)

    store = SqlMetadataStore(sys.argv[1])
    run_pipeline(Pipeline("hang", [hang()]), store=store, artifact_root=sys.argv[2])
    """
)


@component
def quick(examples: Output[Examples]) -> None:
    Path(examples.uri, "rows.txt").write_text("2\n")


def test_a_live_run_keeps_its_staging_and_a_killed_one_loses_it(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    root.mkdir()
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    SqlMetadataStore(url).close()  # migrated once, before the two processes start
    script = tmp_path / "hang.py"
    script.write_text(HANGING_STEP)
    process = subprocess.Popen([sys.executable, str(script), url, str(root)])
    try:
        _wait_for(root / "started", process)
        live_staging = Path((root / "started").read_text())

        @component
        def quick(examples: Output[Examples]) -> None:
            Path(examples.uri, "rows.txt").write_text("2\\n")

        store = SqlMetadataStore(url)
        try:
            result = run_pipeline(Pipeline("quick", [quick()]), store=store, artifact_root=root)
            assert result.ok
            assert live_staging.is_dir()  # the other process is alive: its folder stays
        finally:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        result = run_pipeline(Pipeline("quick", [quick()]), store=store, artifact_root=root)
        store.close()
        assert result.ok
        assert not live_staging.exists()
        assert list((root / ".tmp").iterdir()) == []
    finally:
        if process.poll() is None:
            process.kill()


def test_a_dead_sessions_unregistered_folders_go_and_its_registered_ones_stay(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    from lockgate.core.artifact_store import LocalArtifactStore

    dead = LocalArtifactStore(tmp_path / "artifacts")
    run_id = store.start_run("p")
    kept_execution = store.start_execution(
        run_id,
        step="s",
        component="s",
        cache_key=None,
        code_fingerprint=None,
        params={},
        inputs={},
    )
    folders = []
    for execution in (kept_execution, kept_execution + 1000):
        staging = dead.staging_dir("s", "examples")
        (staging / "rows.txt").write_text("1\n")
        final = dead.final_dir("p", "s", "examples", execution)
        folders.append(Path(dead.publish(staging, final, fingerprint="")))
    kept, orphan = folders
    store.publish_execution(kept_execution, {"examples": Examples(uri=str(kept))})
    assert dead._session_lock is not None
    dead._session_lock.close()  # what the kernel does when the process is killed

    removed = LocalArtifactStore(tmp_path / "artifacts").sweep(store)
    assert str(orphan) in removed and not orphan.exists()
    assert kept.is_dir() and (kept / "rows.txt").read_text() == "1\n"
    assert list((tmp_path / "artifacts" / ".tmp").iterdir()) == []
