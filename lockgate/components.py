"""The standard components, one import away: ``from lockgate.components import ingest, ...``,
with what their parameters take: ``Threshold`` (evaluate's thresholds) and ``metric`` (your
own metric function, for evaluate's ``metrics=``)."""

from lockgate.data.components import (
    check_skew,
    compute_statistics,
    infer_schema,
    ingest,
    validate_examples,
)
from lockgate.evaluation.components import evaluate
from lockgate.evaluation.infra_validate import infra_validate
from lockgate.evaluation.metric_library import metric
from lockgate.evaluation.thresholds import Threshold
from lockgate.evaluation.tune_component import tune
from lockgate.metadata.resolvers import (
    latest_inference_log,
    previous_span_statistics,
    production_baseline,
    production_model,
)
from lockgate.serving.bulk_inference import bulk_infer
from lockgate.serving.components import push
from lockgate.training.components import fit_transform, train

__all__ = [
    "Threshold",
    "bulk_infer",
    "check_skew",
    "compute_statistics",
    "evaluate",
    "fit_transform",
    "infer_schema",
    "infra_validate",
    "ingest",
    "latest_inference_log",
    "metric",
    "previous_span_statistics",
    "production_baseline",
    "production_model",
    "push",
    "train",
    "tune",
    "validate_examples",
]
