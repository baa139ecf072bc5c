"""lockgate: end-to-end ML pipelines with a gate between every stage.

Importing lockgate is cheap: the names below load with the module that defines them, on
first use (``from lockgate import Pipeline``), and the heavy libraries when a step needs them.
"""

from __future__ import annotations

from lockgate.lazy_exports import lazy_exports

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (mypy knows the name)
if TYPE_CHECKING:
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

#: the module that defines each public name (imported on first use, by ``__getattr__``)
_HOMES = {
    **dict.fromkeys(
        [
            "Anomalies",
            "Artifact",
            "Blessing",
            "Examples",
            "InferenceLog",
            "InferenceResult",
            "InfraBlessing",
            "Model",
            "ModelEvaluation",
            "PushedModel",
            "Schema",
            "Statistics",
            "TransformGraph",
        ],
        "lockgate.core.artifacts",
    ),
    **dict.fromkeys(["Input", "Output", "Param", "component"], "lockgate.core.component"),
    "Pipeline": "lockgate.core.pipeline",
    "RunResult": "lockgate.core.run",
    "run_pipeline": "lockgate.core.run",
    "LocalRunner": "lockgate.core.runners",
}


__getattr__, __dir__ = lazy_exports("lockgate", _HOMES, globals(), __all__)
