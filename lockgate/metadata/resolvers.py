"""Resolvers: inputs that come from the metadata store when a step is about to run.

Each asks the store (``MetadataStore``) a fixed number of indexed queries, so that a step's
cost does not grow with the history the store holds."""

from __future__ import annotations

import json
from typing import Any

from lockgate.core.artifacts import Artifact, InferenceLog, PushedModel, Statistics
from lockgate.core.component import Resolver
from lockgate.core.protocols import MetadataStore


def production_baseline(model_name: str, *, candidate_input: str = "model") -> Resolver:
    """The model now in production, to compare a candidate against (None before the first push).

    When production already holds the candidate itself (an unchanged re-run), the baseline
    is the production version before it, so the step sees the same inputs as the first time
    and comes from the cache.
    """

    def resolve(context: Any, inputs: dict[str, Artifact | None]) -> Artifact | None:
        from lockgate.metadata.registry import Registry

        candidate = inputs.get(candidate_input)
        fingerprint = candidate.fingerprint if candidate is not None else None
        version = Registry(context.store).baseline_for(model_name, fingerprint)
        return version.artifact if version is not None else None

    return Resolver(PushedModel, f"the production version of model '{model_name}'", resolve)


def production_model(model_name: str) -> Resolver:
    """The model now in production, for ``train(base_model=...)`` to continue from (warm
    start); None before the first push, and the step trains from scratch.

    When production holds a model this same training would produce again (the same
    examples, transform, tuned hyperparameters and parameters), the base is the one that
    model was trained from, so an unchanged re-run sees the same inputs as the first time
    and comes from the cache instead of stacking another round on its own output.
    """

    def resolve(context: Any, inputs: dict[str, Artifact | None]) -> Artifact | None:
        from lockgate.core.component import canonical_params
        from lockgate.errors import NotFoundError
        from lockgate.metadata.registry import Registry

        try:
            pushed: Artifact | None = Registry(context.store).get(model_name).artifact
        except NotFoundError:  # no such model, or nothing in production yet
            return None
        seen: set[int] = set()
        while pushed is not None and pushed.id is not None and pushed.id not in seen:
            seen.add(pushed.id)
            trained = _training(context.store, pushed)
            if trained is None:
                return pushed
            params, trained_inputs = trained
            same = params == json.loads(canonical_params(context.params)) and _same(
                trained_inputs, inputs, ("examples", "transform", "hyperparameters")
            )
            if not same:
                return pushed
            pushed = trained_inputs.get("base_model")
        return pushed

    return Resolver(PushedModel, f"the production model of '{model_name}'", resolve)


def _training(
    store: MetadataStore, pushed: Artifact
) -> tuple[dict[str, Any], dict[str, Artifact]] | None:
    """(params, inputs) of the train step whose model ``pushed`` holds (None: imported)."""
    if pushed.id is None:
        return None
    push = store.producer_inputs(pushed.id)
    if push is None:
        return None
    model = push[1].get("model")
    if model is None or model.id is None:
        return None
    train = store.producer_inputs(model.id)
    if train is None:
        return None
    return train[0].params, train[1]


def _same(
    earlier: dict[str, Artifact], now: dict[str, Artifact | None], names: tuple[str, ...]
) -> bool:
    for name in names:
        a, b = earlier.get(name), now.get(name)
        if (a is None) != (b is None) or (a is not None and a.fingerprint != b.fingerprint):  # type: ignore[union-attr]
            return False
    return True


def previous_span_statistics(*, current_input: str = "statistics") -> Resolver:
    """Statistics of the newest span before the current one, for drift (span N against N-1).

    None for the first span. The span is read from the Examples the statistics were
    computed on, so it works whatever the steps are called.
    """

    def resolve(context: Any, inputs: dict[str, Artifact | None]) -> Artifact | None:
        current = inputs.get(current_input)
        if current is None or current.id is None:
            return None
        store: MetadataStore = context.store
        return store.previous_span_statistics(current.id)

    return Resolver(Statistics, "the statistics of the previous span", resolve)


def latest_inference_log(model_name: str, *, include_shadow: bool = False) -> Resolver:
    """The newest request-log batch of ``model_name`` (None before anything was served),
    for the skew check. Shadow traffic is the candidate's, not production's: left out
    unless ``include_shadow``.
    """

    def resolve(context: Any, inputs: dict[str, Artifact | None]) -> Artifact | None:
        store: MetadataStore = context.store
        wanted: dict[str, str | int | bool] = {"model_name": model_name}
        if not include_shadow:
            wanted["shadow"] = False
        logs = store.artifacts_of_type(
            InferenceLog.TYPE_NAME, properties=wanted, newest_first=True, limit=1
        )
        return logs[0] if logs else None

    return Resolver(InferenceLog, f"the newest request log of model '{model_name}'", resolve)
