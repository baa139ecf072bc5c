"""The Ray runner on a local Ray (127.0.0.1 only, no dashboard), started once for the
module: the demo gives the local runner's fingerprints, independent steps overlap, declared
resources reach Ray, ``tune`` finds its step context on a worker, shards are Ray tasks, a
killed worker fails its step cleanly (or is retried) and nothing half-made is registered."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lockgate import (
    Examples,
    InferenceResult,
    Input,
    Output,
    Pipeline,
    PushedModel,
    Statistics,
    component,
    run_pipeline,
)
from lockgate.core.fingerprint import path_fingerprint
from lockgate.core.run import RunResult
from lockgate.errors import ConfigError, StepFailedError
from lockgate.metadata.store import SqlMetadataStore

ray = pytest.importorskip("ray")

from ray import cloudpickle  # noqa: E402

from lockgate.core.runners.ray import RayRunner  # noqa: E402

# This module is no package a worker can import: its components and classes travel by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    """One Ray for the module (a start costs seconds): two CPUs and a custom resource.
    The tests' runners find it running and leave it to this fixture to stop."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    runner = RayRunner(num_cpus=2, resources={"lockgate_test": 1}).start()
    try:
        yield
    finally:
        runner.shutdown()


def run(pipeline: Pipeline, project: Path, runner: object = None) -> tuple[RunResult, Path]:
    store = SqlMetadataStore(f"sqlite:///{project / 'metadata.db'}")
    try:
        result = run_pipeline(
            pipeline,
            store=store,
            artifact_root=project / "artifacts",
            project_dir=project,
            runner=runner,  # type: ignore[arg-type]
        )
    finally:
        store.close()
    return result, project / "metadata.db"


def test_the_demo_with_runner_ray_gives_the_local_runners_fingerprints(
    penguins_project: Path, tmp_path: Path
) -> None:
    import shutil

    from click.testing import CliRunner

    from lockgate.cli.main import cli

    twin = tmp_path / "twin"
    shutil.copytree(penguins_project, twin)
    local = CliRunner().invoke(cli, ["run", "--project", str(penguins_project)])
    assert local.exit_code == 0, local.output
    (twin / "lockgate.toml").write_text(
        (twin / "lockgate.toml").read_text() + '\n[runner]\nname = "ray"\n'
    )
    on_ray = CliRunner().invoke(cli, ["run", "--project", str(twin)])
    assert on_ray.exit_code == 0, on_ray.output
    fingerprints = {}
    for project in (penguins_project, twin):
        store = SqlMetadataStore(f"sqlite:///{project / '.lockgate/metadata.db'}")
        try:
            fingerprints[project] = {
                (a.type_name, a.fingerprint)
                for name in ARTIFACT_TYPES
                for a in store.artifacts_of_type(name)
            }
            for name in ARTIFACT_TYPES:  # the files on disk are what was registered
                for artifact in store.artifacts_of_type(name):
                    assert path_fingerprint(artifact.uri) == artifact.fingerprint
        finally:
            store.close()
    assert fingerprints[twin] == fingerprints[penguins_project]
    assert len(fingerprints[twin]) >= 9


ARTIFACT_TYPES = (
    "Examples",
    "Statistics",
    "Schema",
    "Anomalies",
    "TransformGraph",
    "Model",
    "ModelEvaluation",
    "Blessing",
    "PushedModel",
)


@component
def nap(marker: Output[Statistics], *, seconds: float = 2.0) -> None:
    import ray as worker_ray

    started = time.time()
    time.sleep(seconds)
    marker.properties.update(
        started=started,
        ended=time.time(),
        pid=os.getpid(),
        task=worker_ray.get_runtime_context().get_task_id(),
    )


@component(resources={"num_cpus": 2, "lockgate_test": 1})
def hungry(marker: Output[Statistics]) -> None:
    import ray as worker_ray

    marker.properties["assigned"] = worker_ray.get_runtime_context().get_assigned_resources()


def test_independent_steps_run_at_once_as_tasks_with_their_declared_resources(
    tmp_path: Path,
) -> None:
    pipeline = Pipeline("naps", [nap().named("a"), nap().named("b")])
    result, _ = run(pipeline, tmp_path, RayRunner())
    assert result.ok, result.error
    a, b = (result.steps[s].outputs["marker"].properties for s in ("a", "b"))
    assert a["started"] < b["ended"] and b["started"] < a["ended"], (a, b)  # they overlap
    assert a["pid"] != b["pid"] and os.getpid() not in (a["pid"], b["pid"])
    assert a["task"] and b["task"] and a["task"] != b["task"]

    alone, _ = run(Pipeline("hungry", [hungry()]), tmp_path / "hungry", RayRunner())
    assert alone.ok, alone.error
    assigned = alone.steps["hungry"].outputs["marker"].properties["assigned"]
    assert assigned == {"CPU": 2.0, "lockgate_test": 1.0}


def test_tune_opens_its_study_in_the_store_from_a_worker(tmp_path: Path) -> None:
    import optuna

    from lockgate.components import compute_statistics, fit_transform, infer_schema, ingest, tune
    from lockgate.training import tuning

    csv = Path(__file__).parents[2] / "lockgate/templates/penguins/data/penguins.csv"
    examples = ingest(path=str(csv), eval_fraction=0.25)
    statistics = compute_statistics(examples=examples.outputs.examples)
    schema = infer_schema(statistics=statistics.outputs.statistics)
    transform = fit_transform(
        examples=examples.outputs.examples, schema=schema.outputs.schema, label="species"
    )
    tuned = tune(
        examples=examples.outputs.examples,
        transform=transform.outputs.transform,
        search_space={"num_leaves": {"low": 4, "high": 15}},
        n_trials=3,
        params={"n_estimators": 10},
    )
    pipeline = Pipeline("tuned", [examples, statistics, schema, transform, tuned])
    result, db = run(pipeline, tmp_path, RayRunner())
    assert result.ok, result.error
    props = result.steps["tune"].outputs["hyperparameters"].properties
    assert props["study_name"].startswith("tuned.tune.")  # the pipeline and step it ran as
    storage = tuning.open_storage(f"sqlite:///{db}")
    try:
        study = optuna.load_study(study_name=props["study_name"], storage=storage.storage)
    finally:
        storage.close()
    assert len(study.trials) == 3  # in the project's store, opened on the worker by URL


@component
def three_files(examples: Output[Examples]) -> None:
    for split, offset in (("train", 0), ("eval", 100)):
        folder = examples.split_path(split)
        folder.mkdir(parents=True)
        for part in range(3):
            start = offset + 10 * part
            table = pa.table({"x": list(range(start, start + 10)), "k": ["a", "b"] * 5})
            pq.write_table(table, folder / f"part-{part}.parquet")


@component
def where_shards_run(examples: Input[Examples], marker: Output[Statistics]) -> None:
    from lockgate.core.runners import current_runner
    from lockgate.data.components import split_files

    def shard(path: Path) -> dict[str, object]:
        import ray as worker_ray

        return {
            "file": path.name,
            "rows": pq.read_metadata(path).num_rows,
            "task": worker_ray.get_runtime_context().get_task_id(),
        }

    marker.properties["shards"] = current_runner().map(shard, split_files(examples, "train"))
    marker.properties["runner"] = type(current_runner()).__name__


def test_statistics_over_several_files_shard_as_ray_tasks(tmp_path: Path) -> None:
    from lockgate.components import compute_statistics

    def pipeline() -> Pipeline:
        made = three_files()
        stats = compute_statistics(examples=made.outputs.examples)
        seen = where_shards_run(examples=made.outputs.examples)
        return Pipeline("shards", [made, stats, seen])

    on_ray, _ = run(pipeline(), tmp_path / "ray", RayRunner())
    local, _ = run(pipeline(), tmp_path / "local")
    assert on_ray.ok, on_ray.error
    assert local.ok, local.error
    seen = on_ray.steps["where_shards_run"].outputs["marker"].properties
    assert seen["runner"] == "RayRunner"
    assert [s["file"] for s in seen["shards"]] == [f"part-{i}.parquet" for i in range(3)]
    assert len({s["task"] for s in seen["shards"]}) == 3  # one Ray task per file
    ray_stats = on_ray.steps["compute_statistics"].outputs["statistics"]
    local_stats = local.steps["compute_statistics"].outputs["statistics"]
    assert ray_stats.fingerprint == local_stats.fingerprint
    assert ray_stats.properties["num_rows"] == {"train": 30, "eval": 30, "all": 60}
    train = json.loads(Path(ray_stats.uri, "train.json").read_text())
    assert train["num_rows"] == 30


def test_runner_map_sends_each_item_to_a_task_and_keeps_the_order() -> None:
    def square(x: int) -> tuple[int, int]:
        return x * x, os.getpid()

    results = RayRunner().map(square, [3, 1, 2])
    assert [r[0] for r in results] == [9, 1, 4]
    assert os.getpid() not in {r[1] for r in results}


@component
def killed_midway(partial: Output[Statistics], *, pid_file: str) -> None:
    Path(partial.uri, "half.json").write_text("{")
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(60)


def test_a_killed_worker_fails_the_step_and_registers_nothing(tmp_path: Path) -> None:
    pid_file = tmp_path / "worker.pid"
    done: list[RunResult] = []
    thread = threading.Thread(
        target=lambda: done.append(
            run(Pipeline("doomed", [killed_midway(pid_file=str(pid_file))]), tmp_path, RayRunner())[
                0
            ]
        )
    )
    thread.start()
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.1)
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    thread.join(60)
    (result,) = done
    step = result.steps["killed_midway"]
    assert result.status == "failed" and step.status == "failed"
    assert isinstance(step.error, StepFailedError)
    with pytest.raises(StepFailedError, match="step 'killed_midway': its Ray worker was lost"):
        raise step.error
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")
    try:
        assert store.artifacts_of_type("Statistics") == []
    finally:
        store.close()
    assert list((tmp_path / "artifacts").rglob("half.json")) == []


@component(retries=1)
def dies_once(result: Output[Statistics], *, marker: str) -> None:
    leftovers = sorted(p.name for p in Path(result.uri).iterdir())
    if not Path(marker).exists():
        Path(result.uri, "half.json").write_text("{")
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    Path(result.uri, "whole.json").write_text("{}")
    result.properties.update(leftovers=leftovers, pid=os.getpid())


def test_retries_run_a_step_again_when_its_worker_dies(tmp_path: Path) -> None:
    marker = tmp_path / "first-attempt.pid"
    result, _ = run(Pipeline("retried", [dies_once(marker=str(marker))]), tmp_path, RayRunner())
    assert result.ok, result.error
    props = result.steps["dies_once"].outputs["result"].properties
    assert props["leftovers"] == []  # the dead attempt's half file was cleared
    assert props["pid"] != int(marker.read_text())
    files = sorted(p.name for p in Path(result.steps["dies_once"].outputs["result"].uri).iterdir())
    assert files == ["whole.json"]


@component
def refuses(partial: Output[Statistics]) -> None:
    Path(partial.uri, "half.json").write_text("{")
    raise ColumnNotFoundHere("column 'fare' is not in the data")


class ColumnNotFoundHere(ValueError):
    """An error of the user's own, raised on the worker."""


def test_a_steps_own_error_comes_back_as_itself_with_the_workers_traceback(
    tmp_path: Path,
) -> None:
    result, _ = run(Pipeline("refused", [refuses()]), tmp_path, RayRunner())
    error = result.steps["refuses"].error
    assert result.status == "failed"
    with pytest.raises(ColumnNotFoundHere, match="column 'fare' is not in the data"):
        raise error  # type: ignore[misc]
    assert any("raised on a Ray worker" in note for note in error.__notes__)  # type: ignore[union-attr]
    assert list((tmp_path / "artifacts").rglob("half.json")) == []


def test_without_ray_installed_the_ray_runner_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lockgate.core.runners import runner_named

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r'pip install "lockgate\[ray\]"'):
        runner_named("ray")


def test_an_address_without_the_ray_runner_is_refused() -> None:
    from lockgate.core.runners import LocalRunner, runner_named

    assert isinstance(runner_named("local"), LocalRunner)
    assert isinstance(runner_named("ray", address="127.0.0.1:6379"), RayRunner)
    with pytest.raises(ConfigError, match=r"a runner address \(127.0.0.1:6379\) needs the Ray"):
        runner_named("local", address="127.0.0.1:6379")


@component
def penguins_in_three(examples: Input[Examples], resharded: Output[Examples]) -> None:
    """The eval split cut into three files: three shards for bulk_infer."""
    from lockgate.data.components import read_split

    table = read_split(examples, "eval")
    folder = resharded.split_path("eval")
    folder.mkdir(parents=True)
    third = -(-table.num_rows // 3)
    for part in range(3):
        pq.write_table(table.slice(part * third, third), folder / f"part-{part}.parquet")


@component
def bulk_infer_watched(
    examples: Input[Examples],
    model: Input[PushedModel],
    inference: Output[InferenceResult],
    marker: Output[Statistics],
) -> None:
    """bulk_infer, with the Ray task each of its shards ran in recorded in ``marker``."""
    from lockgate.core.runners import current_runner
    from lockgate.serving import bulk_inference

    runner = current_runner()

    class Watched:
        def map(self, fn: Any, items: list[Any]) -> list[Any]:
            def watched(item: Any) -> tuple[Any, str]:
                import ray as worker_ray

                return fn(item), worker_ray.get_runtime_context().get_task_id()

            results = runner.map(watched, items)
            marker.properties["runner"] = type(runner).__name__
            marker.properties["tasks"] = [task for _, task in results]
            return [result for result, _ in results]

    original = bulk_inference.current_runner
    bulk_inference.current_runner = Watched  # type: ignore[assignment]
    try:
        bulk_inference.bulk_infer.fn(examples=examples, model=model, inference=inference)
    finally:
        bulk_inference.current_runner = original  # type: ignore[assignment]


def test_bulk_infer_shards_are_ray_tasks_and_give_the_local_runners_parts(
    penguins_project: Path,
) -> None:
    from lockgate.cli.project import load_pipeline
    from lockgate.components import bulk_infer

    def pipeline(infer: Any) -> Pipeline:
        steps = dict(load_pipeline(penguins_project / "pipeline.py").steps)
        three = penguins_in_three(examples=steps["ingest"].outputs.examples)
        inferred = infer(examples=three.outputs.resharded, model=steps["push"].outputs.pushed_model)
        return Pipeline("penguins", [*steps.values(), three, inferred])

    local, _ = run(pipeline(bulk_infer), penguins_project)  # trains and pushes here
    on_ray, _ = run(pipeline(bulk_infer_watched), penguins_project, RayRunner())
    assert local.ok, local.error
    assert on_ray.ok, on_ray.error
    seen = on_ray.steps["bulk_infer_watched"].outputs["marker"].properties
    assert seen["runner"] == "RayRunner"
    assert len(set(seen["tasks"])) == 3 and None not in seen["tasks"]  # a Ray task per file
    ours = on_ray.steps["bulk_infer_watched"].outputs["inference"]
    theirs = local.steps["bulk_infer"].outputs["inference"]
    assert ours.fingerprint == theirs.fingerprint
    assert ours.properties == theirs.properties
    assert [p["rows"] for p in ours.properties["parts"]] == [
        pq.read_metadata(Path(ours.uri, p["file"])).num_rows for p in ours.properties["parts"]
    ]
