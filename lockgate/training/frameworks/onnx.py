"""ONNX models, imported only, run by onnxruntime on the CPU; refused up front when they
need a custom-operator library or external data (``onnx_checks``)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from lockgate.errors import ModelError


class OnnxFramework:
    name = "onnx"
    description = "ONNX models without custom operators or external data, run by onnxruntime"
    suffixes = (".onnx",)
    takes_trust = False
    predicts_labels = False
    format_name = "an ONNX model"

    def claims(self, estimator: Any) -> str | None:
        return None  # imported only

    def save(
        self, estimator: Any, folder: Path, *, trusted: Collection[str]
    ) -> tuple[str, list[str]]:
        raise ModelError("lockgate imports ONNX models but does not save them")

    def file_name(self, source: Path) -> str:
        return "model.onnx"

    def check_import(self, data: bytes, source: Path, trusted: Collection[str]) -> None:
        return None

    def is_own_format(self, data: bytes) -> bool:
        return True  # protobuf has no header; parse_checked refuses what is not ONNX

    def load(self, data: bytes, path: Path, *, trusted: Collection[str]) -> Any:
        return OnnxSession(data, path)

    def predict(self, model: Any, X: np.ndarray) -> np.ndarray:
        return np.asarray(model.run(X)[0])

    def predict_proba(self, model: Any, X: np.ndarray) -> np.ndarray | None:
        # ONNX answers float32: rows miss 1.0 by more than metrics tolerate
        proba = np.asarray(model.run(X)[1], dtype=np.float64)
        return np.asarray(proba / proba.sum(axis=1, keepdims=True), dtype=np.float64)

    def describe(self, model: Any) -> tuple[str, int | None, list[Any] | None]:
        if model.n_outputs >= 2:
            return "classification", model.n_features, model.classes
        return "regression", model.n_features, None


class OnnxSession:
    """An onnxruntime session: outputs (label, probabilities) or one value column. Built
    from the checked bytes (``onnx_checks``), never from a path, and with no custom-operator
    library registered."""

    def __init__(self, data: bytes, path: Path) -> None:
        try:
            import onnx  # noqa: F401 - the checks below need it as much as the session does
            import onnxruntime
        except ImportError as exc:
            raise ModelError(
                "ONNX models need onnxruntime", hint='pip install "lockgate[onnx]"'
            ) from exc
        from lockgate.training.onnx_checks import parse_checked

        graph = parse_checked(data, path).graph
        options = onnxruntime.SessionOptions()
        options.add_session_config_entry("session.load_model_format", "ONNX")
        try:
            self.session = onnxruntime.InferenceSession(
                data, options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise ModelError(f"{path} is not a loadable ONNX model: {exc}", path=str(path)) from exc
        self.classes = _onnx_classes(graph)
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        self.dtype = np.float32 if first.type == "tensor(float)" else np.float64
        width = first.shape[1] if len(first.shape) == 2 else None
        self.n_features = width if isinstance(width, int) else None
        self.n_outputs = len(self.session.get_outputs())

    def run(self, X: np.ndarray) -> list[np.ndarray]:
        outputs = self.session.run(None, {self.input_name: X.astype(self.dtype)})
        fixed = []
        for value in outputs:
            if isinstance(value, list) and value and isinstance(value[0], dict):  # ZipMap
                keys = list(value[0])
                fixed.append(np.array([[row[k] for k in keys] for row in value]))
            else:
                fixed.append(np.asarray(value))
        return fixed


def _onnx_classes(graph: Any) -> list[Any] | None:
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.name == "classlabels_int64s" and attribute.ints:
                return [int(v) for v in attribute.ints]
            if attribute.name == "classlabels_strings" and attribute.strings:
                return [v.decode() for v in attribute.strings]
    return None


FRAMEWORK = OnnxFramework()
