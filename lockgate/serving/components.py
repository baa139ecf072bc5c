"""The push component: the last gate before serving. Only a blessed model is pushed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from lockgate.core.artifacts import (
    Artifact,
    Blessing,
    InfraBlessing,
    Model,
    PushedModel,
    TransformGraph,
)
from lockgate.core.component import Input, Output, component
from lockgate.errors import NotBlessedError


def _register_pushed(
    context: Any, outputs: dict[str, Artifact], params: dict[str, Any], transaction: Any
) -> None:
    """In the transaction that publishes the PushedModel: a new registry version, now in
    production. A crash leaves the push complete and registered, or neither (then the next
    run pushes again): never a cached push whose model the registry does not know."""
    from lockgate.metadata.registry import PRODUCTION, Registry

    pushed = outputs["pushed_model"]
    Registry(context.store).register_within(
        transaction,
        params["model_name"],
        pushed,
        blessed=True,
        properties={
            "model_fingerprint": pushed.properties["model_fingerprint"],
            "run_id": context.run_id,
        },
        alias=PRODUCTION,
        reason=f"pushed by run {context.run_id}",
    )


@component(on_publish=_register_pushed)
def push(
    model: Input[Model],
    transform: Input[TransformGraph],
    blessing: Input[Blessing],
    pushed_model: Output[PushedModel],
    infra_blessing: Input[InfraBlessing] | None = None,
    *,
    model_name: str,
) -> None:
    """Package transform and model as one servable and make it the production version.

    Refused (``NotBlessedError``, nothing pushed) unless the evaluator blessed the model,
    and, when the pipeline infra-validates (``infra_blessing`` given), the infra-validator
    blessed it too."""
    check_blessed(model, blessing, infra_blessing)
    pushed_model.properties.update(package_pushed(model, transform, pushed_model.path, model_name))


def check_blessed(
    model: Artifact, blessing: Artifact, infra_blessing: Artifact | None = None
) -> None:
    """Raise ``NotBlessedError`` naming the reasons unless every verdict given is a yes."""
    verdicts = [
        (
            blessing,
            "blessing.json",
            "the evaluator",
            "the evaluator's thresholds or the comparison with production failed; "
            "see the evaluate step's ModelEvaluation",
        ),
    ]
    if infra_blessing is not None:
        verdicts.append(
            (
                infra_blessing,
                InfraBlessing.FILE_NAME,
                "infra-validation",
                "the candidate failed in a real server (see the infra_validate step's"
                " infra_blessing.json); production keeps its version",
            )
        )
    for artifact, file_name, who, hint in verdicts:
        verdict = json.loads((artifact.path / file_name).read_text())
        if not verdict.get("blessed"):
            listed = list(verdict.get("reasons", []))
            reasons = "; ".join(listed[:2]) or "no reason recorded"
            if len(listed) > 2:  # the run summary and the evaluation list every one
                reasons += f"; and {len(listed) - 2} more"
            raise NotBlessedError(
                f"push refused: model {model.uri} is not blessed by {who} ({reasons})",
                hint=hint,
            )


def package_pushed(
    model: Model, transform: TransformGraph, target: Path, model_name: str
) -> dict[str, Any]:
    """Write the pushed-model folder (``transform/``, ``model/``, ``samples.json``) at
    ``target``, check that the server can load it and that it answers its warm-up requests,
    and return the PushedModel's properties. Push and infra-validation's own registry both
    package a candidate through here, so both serve the same folder."""
    shutil.copytree(transform.path, target / "transform")
    shutil.copytree(model.path, target / "model")
    # Warm-up requests for the server, from what the transform learned on the train split.
    from lockgate.serving.servable import typical_rows, write_samples
    from lockgate.training.transform import TransformGraph as Graph

    write_samples(target, typical_rows(Graph.load(transform.path)))
    trusted = list(model.properties.get("trusted_types") or [])
    _check_servable(target, model_name, model.properties["sha256"], trusted)
    return {
        "model_name": model_name,
        "model_sha256": model.properties["sha256"],
        "model_fingerprint": model.fingerprint,
        "framework": model.properties.get("framework"),
        "framework_description": model.properties.get("framework_description"),
        "framework_version": model.properties.get("framework_version"),
        "trusted_types": trusted,
    }


def _check_servable(folder: Path, model_name: str, sha256: str, trusted: list[str]) -> None:
    """Production moves only to what the server can load: the pushed folder is loaded as
    the server loads a version, and answers its warm-up requests, before it is published."""
    from lockgate.core.fingerprint import path_fingerprint
    from lockgate.serving.reload import warm_up
    from lockgate.serving.servable import PipelineServable, read_samples

    servable = PipelineServable.load(
        model_name,
        "candidate",
        folder,
        model_sha256=sha256,
        fingerprint=path_fingerprint(folder),
        trusted_types=trusted,
    )
    try:
        warm_up(servable, read_samples(folder, servable.transform))
    finally:
        servable.close()
