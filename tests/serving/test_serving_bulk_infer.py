"""bulk_infer on the penguins template's trained and pushed model: the server's answers for
every row, one part file per examples file, cached on a re-run, and bad input refused with
nothing registered."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lockgate import Examples, InferenceResult, Input, Output, Pipeline, component
from lockgate.cli.project import load_pipeline
from lockgate.components import bulk_infer, ingest, production_model
from lockgate.core.run import RunResult, run_pipeline
from lockgate.data.components import read_split
from lockgate.errors import ColumnNotFoundError, ConfigError, ModelError, ModelIntegrityError
from lockgate.metadata.store import SqlMetadataStore
from lockgate.serving.app import create_app
from lockgate.serving.repository import ModelRepository
from lockgate.serving.servable import PipelineServable

TEMPLATE = Path(__file__).resolve().parents[2] / "lockgate" / "templates" / "penguins"


@component
def reshard(
    examples: Input[Examples], resharded: Output[Examples], *, parts: int = 3, drop: str = ""
) -> None:
    """The examples again, each split cut into ``parts`` files (without column ``drop``)."""
    splits = {}
    for split in ("train", "eval"):
        table = read_split(examples, split)
        if drop:
            table = table.drop_columns([drop])
        folder = resharded.path / split
        folder.mkdir(parents=True)
        bounds = np.linspace(0, table.num_rows, parts + 1).astype(int)
        for i, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            pq.write_table(table.slice(start, stop - start), folder / f"part-{i}.parquet")
        splits[split] = table.num_rows
    resharded.properties["splits"] = splits


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, SqlMetadataStore]]:
    """The penguins template, trained and pushed once for the module (without its
    infra-validation, which would pay a server's start)."""
    from conftest import without_infra

    target = tmp_path_factory.mktemp("bulk") / "project"
    shutil.copytree(TEMPLATE, target, ignore=shutil.ignore_patterns("__pycache__"))
    (target / "pipeline.py").write_text(without_infra((target / "pipeline.py").read_text()))
    store = SqlMetadataStore(f"sqlite:///{target / 'metadata.db'}")
    try:
        yield target, store
    finally:
        store.close()


def run_with(project: tuple[Path, SqlMetadataStore], *extra: Any) -> RunResult:
    """The template's pipeline with ``extra(steps)`` steps added, run in the project."""
    folder, store = project
    template = load_pipeline(folder / "pipeline.py")
    steps = dict(template.steps)
    for make in extra:  # a later step may take an earlier one's output
        step = make(steps)
        steps[step.name] = step
    return run_pipeline(
        Pipeline("penguins", list(steps.values())),
        store=store,
        artifact_root=folder / "artifacts",
        project_dir=folder,
    )


def pushed(steps: dict[str, Any]) -> Any:
    return steps["push"].outputs.pushed_model


def read_parts(folder: Path) -> pa.Table:
    files = sorted(folder.glob("part-*.parquet"), key=lambda p: int(p.stem.split("-")[1]))
    return pa.concat_tables([pq.read_table(f) for f in files])


def servable_of(result: RunResult) -> PipelineServable:
    artifact = result.steps["push"].outputs["pushed_model"]
    return PipelineServable.load(
        "penguins",
        "1",
        artifact.path,
        model_sha256=artifact.properties["model_sha256"],
        fingerprint=artifact.fingerprint,
    )


def test_predictions_are_the_servers_for_every_row_and_a_rerun_is_cached(
    project: tuple[Path, SqlMetadataStore],
) -> None:
    def step(steps: dict[str, Any]) -> Any:
        return bulk_infer(
            examples=steps["ingest"].outputs.examples,
            model=pushed(steps),
            split="all",
            columns=["island", "species"],
            batch_size=50,
        )

    result = run_with(project, step)
    assert result.ok, result.error
    inference = result.steps["bulk_infer"].outputs["inference"]
    examples = result.steps["ingest"].outputs["examples"]
    table = read_parts(inference.path)
    raw = pa.concat_tables([read_split(examples, "train"), read_split(examples, "eval")])
    assert table.column_names == ["island", "species", "predicted", "probabilities"]
    assert table.num_rows == raw.num_rows == inference.properties["rows"]
    assert inference.properties["files"] == 2 and inference.properties["splits"] == [
        "eval",
        "train",
    ]
    servable = servable_of(result)
    request = {spec.name: raw[spec.name].to_numpy(zero_copy_only=False) for spec in servable.inputs}
    expected = servable.predict(request)
    assert table["predicted"].to_pylist() == expected["predicted"].tolist()
    np.testing.assert_array_equal(
        np.array(table["probabilities"].to_pylist()), expected["probabilities"]
    )
    assert table["island"].to_pylist() == raw["island"].to_pylist()
    assert inference.properties["outputs"] == ["predicted", "probabilities"]
    assert inference.properties["classes"] == list(servable.transform.label_classes)
    assert inference.properties["model_name"] == "penguins"
    assert (
        inference.properties["pushed_model_id"] == result.steps["push"].outputs["pushed_model"].id
    )
    assert inference.properties["model_fingerprint"] == (
        result.steps["train"].outputs["model"].fingerprint
    )

    again = run_with(project, step)
    assert again.ok, again.error
    assert again.steps["bulk_infer"].status == "cached"
    assert again.steps["bulk_infer"].outputs["inference"].fingerprint == inference.fingerprint


def test_predictions_are_the_http_answers_of_a_real_server(
    project: tuple[Path, SqlMetadataStore], serve_app: Callable[[Any], str]
) -> None:
    result = run_with(
        project,
        lambda steps: bulk_infer(examples=steps["ingest"].outputs.examples, model=pushed(steps)),
    )
    assert result.ok, result.error
    servable = servable_of(result)
    url = serve_app(create_app(ModelRepository([servable])))
    raw = read_split(result.steps["ingest"].outputs["examples"], "eval")
    request = {
        "inputs": [
            {
                "name": spec.name,
                "shape": [raw.num_rows],
                "datatype": spec.datatype,
                "data": [None if v is None or v != v else v for v in raw[spec.name].to_pylist()],
            }
            for spec in servable.inputs
        ]
    }
    answer = httpx.post(f"{url}/v2/models/penguins/infer", json=request, timeout=30)
    assert answer.status_code == 200, answer.text
    outputs = {out["name"]: out for out in answer.json()["outputs"]}
    table = read_parts(result.steps["bulk_infer"].outputs["inference"].path)
    assert table["predicted"].to_pylist() == outputs["predicted"]["data"]
    assert (
        np.array(table["probabilities"].to_pylist()).ravel().tolist()
        == (outputs["probabilities"]["data"])
    )


def test_each_examples_file_is_a_shard_with_its_own_part(
    project: tuple[Path, SqlMetadataStore],
) -> None:
    result = run_with(
        project,
        lambda steps: reshard(examples=steps["ingest"].outputs.examples, parts=3),
        lambda steps: bulk_infer(examples=steps["reshard"].outputs.resharded, model=pushed(steps)),
    )
    assert result.ok, result.error
    inference = result.steps["bulk_infer"].outputs["inference"]
    parts = inference.properties["parts"]
    assert [p["file"] for p in parts] == [f"part-{i}.parquet" for i in range(3)]
    assert [p["source"] for p in parts] == [f"eval/part-{i}.parquet" for i in range(3)]
    assert sorted(p.name for p in inference.path.glob("*.parquet")) == [p["file"] for p in parts]
    for part in parts:
        assert pq.read_metadata(inference.path / part["file"]).num_rows == part["rows"] > 0
    eval_rows = result.steps["ingest"].outputs["examples"].properties["splits"]["eval"]
    assert sum(p["rows"] for p in parts) == inference.properties["rows"] == eval_rows
    # the same answers as one shard over the whole split
    servable = servable_of(result)
    raw = read_split(result.steps["ingest"].outputs["examples"], "eval")
    request = {s.name: raw[s.name].to_numpy(zero_copy_only=False) for s in servable.inputs}
    assert read_parts(inference.path)["predicted"].to_pylist() == (
        servable.predict(request)["predicted"].tolist()
    )


def test_a_scoring_pipeline_takes_the_production_model_from_the_registry(
    project: tuple[Path, SqlMetadataStore],
) -> None:
    trained = run_with(project)
    assert trained.ok, trained.error
    folder, store = project
    rows = ingest(path="data/penguins.csv", eval_fraction=0.25)
    scores = bulk_infer(examples=rows.outputs.examples, model=production_model("penguins"))
    result = run_pipeline(
        Pipeline("score_penguins", [rows, scores]),
        store=store,
        artifact_root=folder / "artifacts",
        project_dir=folder,
    )
    assert result.ok, result.error
    inference = result.steps["bulk_infer"].outputs["inference"]
    pushed_model = trained.steps["push"].outputs["pushed_model"]
    assert inference.properties["pushed_fingerprint"] == pushed_model.fingerprint
    servable = servable_of(trained)
    raw = read_split(result.steps["ingest"].outputs["examples"], "eval")
    request = {s.name: raw[s.name].to_numpy(zero_copy_only=False) for s in servable.inputs}
    assert read_parts(inference.path)["predicted"].to_pylist() == (
        servable.predict(request)["predicted"].tolist()
    )


def test_no_production_model_is_a_clear_error_and_nothing_is_registered(
    project: tuple[Path, SqlMetadataStore],
) -> None:
    folder, store = project
    before = inference_results(project)
    rows = ingest(path="data/penguins.csv", eval_fraction=0.25)
    scores = bulk_infer(examples=rows.outputs.examples, model=production_model("nobody"))
    result = run_pipeline(
        Pipeline("score_nobody", [rows, scores]),
        store=store,
        artifact_root=folder / "artifacts",
        project_dir=folder,
    )
    assert not result.ok and result.failed_step == "bulk_infer"
    with pytest.raises(ModelError, match="no production version yet"):
        raise result.error
    assert inference_results(project) == before


def test_an_empty_file_gets_a_part_with_the_schema_of_the_others(
    project: tuple[Path, SqlMetadataStore], tmp_path: Path
) -> None:
    trained = run_with(project)
    assert trained.ok, trained.error
    raw = read_split(trained.steps["ingest"].outputs["examples"], "eval")
    (tmp_path / "examples" / "eval").mkdir(parents=True)
    pq.write_table(raw.slice(0, 0), tmp_path / "examples" / "eval" / "part-0.parquet")
    pq.write_table(raw.slice(0, 5), tmp_path / "examples" / "eval" / "part-1.parquet")
    (tmp_path / "out").mkdir()
    inference = InferenceResult(uri=str(tmp_path / "out"))
    bulk_infer.fn(
        examples=Examples(uri=str(tmp_path / "examples")),
        model=trained.steps["push"].outputs["pushed_model"],
        inference=inference,
        columns=["island"],
        batch_size=2,
    )
    assert [p["rows"] for p in inference.properties["parts"]] == [0, 5]
    empty, full = (pq.read_table(tmp_path / "out" / f"part-{i}.parquet") for i in (0, 1))
    assert empty.num_rows == 0 and empty.schema == full.schema
    assert full.column_names == ["island", "predicted", "probabilities"]


def test_a_copied_column_named_as_an_output_is_refused(
    project: tuple[Path, SqlMetadataStore], tmp_path: Path
) -> None:
    trained = run_with(project)
    assert trained.ok, trained.error
    with pytest.raises(ConfigError, match=r"columns \['predicted'\] have the names of the model"):
        bulk_infer.fn(
            examples=trained.steps["ingest"].outputs["examples"],
            model=trained.steps["push"].outputs["pushed_model"],
            inference=InferenceResult(uri=str(tmp_path)),
            columns=["predicted"],
        )
    assert list(tmp_path.iterdir()) == []


def inference_results(project: tuple[Path, SqlMetadataStore]) -> int:
    return len(project[1].artifacts_of_type("InferenceResult"))


def test_a_missing_model_input_is_named_with_the_file_and_nothing_is_registered(
    project: tuple[Path, SqlMetadataStore],
) -> None:
    before = inference_results(project)
    result = run_with(
        project,
        lambda steps: reshard(
            examples=steps["ingest"].outputs.examples, parts=1, drop="bill_length_mm"
        ),
        lambda steps: bulk_infer(examples=steps["reshard"].outputs.resharded, model=pushed(steps)),
    )
    assert not result.ok and result.failed_step == "bulk_infer"
    with pytest.raises(
        ColumnNotFoundError,
        match=r"column 'bill_length_mm' not found in examples split 'eval' \(.*eval/part-0\.parquet\);"
        r" columns are \[.*'island'",
    ):
        raise result.error
    assert inference_results(project) == before


def test_an_unknown_copied_column_is_refused_and_nothing_is_registered(
    project: tuple[Path, SqlMetadataStore],
) -> None:
    before = inference_results(project)
    result = run_with(
        project,
        lambda steps: bulk_infer(
            examples=steps["ingest"].outputs.examples, model=pushed(steps), columns=["penguin_id"]
        ),
    )
    assert not result.ok and result.failed_step == "bulk_infer"
    with pytest.raises(ColumnNotFoundError, match=r"column 'penguin_id' not found in examples"):
        raise result.error
    assert inference_results(project) == before


def test_a_model_file_changed_after_push_is_refused_and_nothing_is_registered(
    project: tuple[Path, SqlMetadataStore], tmp_path: Path
) -> None:
    first = run_with(project)
    assert first.ok, first.error
    folder = first.steps["push"].outputs["pushed_model"].path
    model_file = next(p for p in (folder / "model").iterdir() if p.name != "model.json")
    saved = tmp_path / "saved"
    shutil.copyfile(model_file, saved)
    before = inference_results(project)
    try:
        model_file.write_bytes(model_file.read_bytes() + b"\n")
        result = run_with(
            project,
            lambda steps: bulk_infer(
                examples=steps["ingest"].outputs.examples, model=pushed(steps), split="train"
            ),
        )
    finally:
        shutil.copyfile(saved, model_file)
    assert not result.ok and result.failed_step == "bulk_infer"
    with pytest.raises(ModelIntegrityError, match="sha256"):
        raise result.error
    assert inference_results(project) == before
