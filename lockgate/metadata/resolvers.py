"""Resolvers: inputs that come from the metadata store when a step is about to run."""

from __future__ import annotations

from typing import Any

from lockgate.core.artifacts import Artifact, PushedModel
from lockgate.core.component import Resolver


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
