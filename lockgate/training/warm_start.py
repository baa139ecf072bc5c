"""Warm start: the model in production, loaded the safe way, checked to fit the run that
continues from it (same transformed features), and described for lineage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lockgate.core.artifacts import PushedModel
from lockgate.errors import ConfigError


@dataclass(frozen=True)
class BaseModel:
    """What ``train`` continues from: the framework's own loaded model object."""

    model: Any
    framework: str
    record: dict[str, Any]


def load_base_model(pushed: PushedModel, graph: Any) -> BaseModel:
    """The pushed model's raw model, once its folder and file checks pass and its transform
    produces exactly the features ``graph`` does; a ConfigError names the difference."""
    from lockgate.training.pushed_folder import load_pushed_folder

    name = pushed.properties.get("model_name", "the base model")
    base_graph, loaded = load_pushed_folder(
        pushed.path,
        model_sha256=pushed.properties["model_sha256"],
        fingerprint=pushed.fingerprint,
        trusted_types=pushed.properties.get("trusted_types"),
    )
    theirs, ours = list(base_graph.feature_names_out), list(graph.feature_names_out)
    if theirs != ours or base_graph.task != graph.task:
        raise ConfigError(
            f"base model '{name}' (artifact {pushed.id}) does not fit this training:"
            f" {_difference(base_graph, graph)}",
            hint="warm start continues a model on the same features and task; retrain from"
            " scratch (leave base_model out) after a feature or transform change",
        )
    return BaseModel(
        model=loaded.model,
        framework=loaded.info.framework,
        record={
            "model_name": name,
            "artifact_id": pushed.id,
            "version": pushed.properties.get("version"),
            "framework": loaded.info.framework,
            "model_sha256": pushed.properties["model_sha256"],
        },
    )


def _difference(base: Any, graph: Any) -> str:
    if base.task != graph.task:
        return f"it does {base.task}, this training does {graph.task}"
    theirs, ours = base.feature_names_out, graph.feature_names_out
    missing = [n for n in ours if n not in theirs]
    extra = [n for n in theirs if n not in ours]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"features it lacks {missing[:8]}")
        if extra:
            parts.append(f"features it has that this run does not {extra[:8]}")
        return "; ".join(parts)
    return f"the same {len(ours)} features in another order"
