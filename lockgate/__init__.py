"""lockgate: end-to-end ML pipelines with a gate between every stage.

Importing lockgate is cheap: the heavy libraries load when a step needs them.
"""

from lockgate.core.artifacts import (
    Anomalies,
    Artifact,
    Blessing,
    Examples,
    InferenceLog,
    InferenceResult,
    InfraBlessing,
    Model,
    ModelEvaluation,
    PushedModel,
    Schema,
    Statistics,
    TransformGraph,
)
from lockgate.core.component import Input, Output, Param, component
from lockgate.core.pipeline import Pipeline
from lockgate.core.run import RunResult, run_pipeline
from lockgate.core.runners import LocalRunner

__version__ = "0.1.0"

__all__ = [
    "Anomalies",
    "Artifact",
    "Blessing",
    "Examples",
    "InferenceLog",
    "InferenceResult",
    "InfraBlessing",
    "Input",
    "LocalRunner",
    "Model",
    "ModelEvaluation",
    "Output",
    "Param",
    "Pipeline",
    "PushedModel",
    "RunResult",
    "Schema",
    "Statistics",
    "TransformGraph",
    "component",
    "run_pipeline",
]
