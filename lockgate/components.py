"""The standard components, one import away: ``from lockgate.components import ingest, ...``,
with what their parameters take: ``Threshold`` (evaluate's thresholds) and ``metric`` (your
own metric function, for evaluate's ``metrics=``).

Each name loads with the module that defines it, on first use: a pipeline that imports
``ingest`` and ``train`` does not load the tuner or the bulk-inference step.
"""

from __future__ import annotations

from lockgate.lazy_exports import lazy_exports

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (mypy knows the name)
if TYPE_CHECKING:
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

#: the module that defines each name (imported on first use, by ``__getattr__``)
_HOMES = {
    **dict.fromkeys(
        ["check_skew", "compute_statistics", "infer_schema", "ingest", "validate_examples"],
        "lockgate.data.components",
    ),
    "evaluate": "lockgate.evaluation.components",
    "infra_validate": "lockgate.evaluation.infra_validate",
    "metric": "lockgate.evaluation.metric_library",
    "Threshold": "lockgate.evaluation.thresholds",
    "tune": "lockgate.evaluation.tune_component",
    **dict.fromkeys(
        [
            "latest_inference_log",
            "previous_span_statistics",
            "production_baseline",
            "production_model",
        ],
        "lockgate.metadata.resolvers",
    ),
    "bulk_infer": "lockgate.serving.bulk_inference",
    "push": "lockgate.serving.components",
    "fit_transform": "lockgate.training.components",
    "train": "lockgate.training.components",
}


__getattr__, __dir__ = lazy_exports("lockgate.components", _HOMES, globals(), __all__)
