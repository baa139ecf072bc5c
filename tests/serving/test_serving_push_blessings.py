"""push needs every blessing the pipeline makes: the evaluator's, and infra-validation's
when the pipeline has that step. A refused push pushes nothing and production keeps its
version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lockgate.cli.project import apply_overrides, load_pipeline
from lockgate.core.artifacts import Blessing, InfraBlessing, Model, PushedModel
from lockgate.core.run import run_pipeline
from lockgate.errors import NotBlessedError
from lockgate.metadata.registry import Registry
from lockgate.metadata.store import SqlMetadataStore
from lockgate.serving.components import check_blessed, push


def verdict(folder: Path, cls: type, blessed: bool, reasons: list[str]):  # type: ignore[no-untyped-def]
    folder.mkdir()
    name = "blessing.json" if cls is Blessing else InfraBlessing.FILE_NAME
    (folder / name).write_text(json.dumps({"blessed": blessed, "reasons": reasons}))
    return cls(uri=str(folder), properties={"blessed": blessed, "reasons": reasons})


def test_check_blessed_needs_the_evaluators_and_the_infra_blessing(tmp_path: Path) -> None:
    model = Model(uri=str(tmp_path / "model"))
    yes = verdict(tmp_path / "yes", Blessing, True, [])
    no = verdict(tmp_path / "no", Blessing, False, ["accuracy 0.41 < lower_bound 0.9"])
    infra_yes = verdict(tmp_path / "infra_yes", InfraBlessing, True, [])
    infra_no = verdict(
        tmp_path / "infra_no",
        InfraBlessing,
        False,
        ["loads: the server did not become ready within max_loading_time 60 s: ..."],
    )
    with pytest.raises(NotBlessedError, match=r"not blessed by the evaluator \(accuracy 0.41"):
        check_blessed(model, no, infra_yes)
    with pytest.raises(
        NotBlessedError, match=r"not blessed by infra-validation \(loads: the server did not"
    ):
        check_blessed(model, yes, infra_no)
    check_blessed(model, yes, infra_yes)
    check_blessed(model, yes)  # a pipeline without infra-validation needs the evaluator's only


def test_a_refused_push_writes_nothing(tmp_path: Path) -> None:
    model = Model(uri=str(tmp_path / "model"), properties={"sha256": "0" * 64})
    out = tmp_path / "pushed"
    out.mkdir()
    with pytest.raises(NotBlessedError, match="not blessed by infra-validation"):
        push.fn(
            model=model,
            transform=None,
            blessing=verdict(tmp_path / "yes", Blessing, True, []),
            infra_blessing=verdict(tmp_path / "no", InfraBlessing, False, ["p99_latency: ..."]),
            pushed_model=PushedModel(uri=str(out)),
            model_name="m",
        )
    assert list(out.iterdir()) == []


def run(project: Path, store: SqlMetadataStore, *overrides: str):  # type: ignore[no-untyped-def]
    pipeline = apply_overrides(load_pipeline(project / "pipeline.py"), list(overrides))
    return run_pipeline(
        pipeline, store=store, artifact_root=project / "artifacts", project_dir=project
    )


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_pipeline_with_infra_validation_pushes_only_with_both_blessings(
    penguins_project_with_infra: Path, store: SqlMetadataStore
) -> None:
    penguins_project = penguins_project_with_infra
    # the penguins template validates its candidate in a real server before push
    first = run(penguins_project, store)
    assert first.ok, first.error
    infra = first.steps["infra_validate"].outputs["infra_blessing"]
    assert infra.properties["blessed"] is True, infra.properties["reasons"]
    registry = Registry(store)
    assert registry.get("penguins").version == 1

    refused = run(
        penguins_project,
        store,
        'train.params={"n_estimators": 50}',
        "infra_validate.max_p99_latency_ms=0.001",
    )
    assert refused.status == "blocked" and refused.failed_step == "push"
    assert isinstance(refused.error, NotBlessedError)
    assert "not blessed by infra-validation (p99_latency: p99 " in str(refused.error)
    assert refused.steps["evaluate"].outputs["blessing"].properties["blessed"] is True
    assert registry.get("penguins").version == 1
    assert [v.version for v in registry.versions("penguins")] == [1]
    assert len(store.artifacts_of_type("PushedModel")) == 1

    unblessed = run(
        penguins_project,
        store,
        'train.params={"n_estimators": 60}',
        'evaluate.thresholds={"log_loss": {"upper_bound": 1e-9}}',
    )
    assert unblessed.status == "blocked" and unblessed.failed_step == "push"
    assert "not blessed by the evaluator" in str(unblessed.error)
    assert unblessed.steps["infra_validate"].outputs["infra_blessing"].properties["blessed"]
    assert [v.version for v in registry.versions("penguins")] == [1]
