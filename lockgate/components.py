"""The standard components, one import away: ``from lockgate.components import ingest, ...``."""

from lockgate.data.components import compute_statistics, infer_schema, ingest, validate_examples
from lockgate.evaluation.components import evaluate
from lockgate.metadata.resolvers import production_baseline
from lockgate.serving.components import push
from lockgate.training.components import fit_transform, train

__all__ = [
    "compute_statistics",
    "evaluate",
    "fit_transform",
    "infer_schema",
    "ingest",
    "production_baseline",
    "push",
    "train",
    "validate_examples",
]
