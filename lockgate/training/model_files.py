"""Model files in safe formats, with a sha256 checked before anything is deserialised.

LightGBM is saved as its native text format, scikit-learn through skops (no pickle)::

    model/
      model.txt | model.skops   the model itself
      model.json                {"framework", "file", "sha256", "task", "n_features", "classes"}
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lockgate.errors import DataError, ModelError, ModelIntegrityError

FORMAT_VERSION = 1
META_FILE = "model.json"
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.")
# builtins that run code or touch the system are never trusted, whatever the prefix says
REFUSED_BUILTINS = frozenset(
    f"builtins.{name}"
    for name in (
        "eval",
        "exec",
        "compile",
        "open",
        "__import__",
        "getattr",
        "setattr",
        "delattr",
        "globals",
        "locals",
        "vars",
        "input",
        "breakpoint",
        "exit",
        "quit",
        "help",
    )
)


@dataclass(frozen=True)
class ModelFileInfo:
    """What ``model.json`` records about the saved model."""

    framework: str
    file: str
    sha256: str
    task: str
    n_features: int
    classes: list[Any] | None = None
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(estimator: Any, directory: str | Path) -> ModelFileInfo:
    """Write the estimator and ``model.json``; raise ModelError for an unsupported type."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    framework, task = _identify(estimator)
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is None:
        raise ModelError(
            f"cannot save {type(estimator).__name__}: it is not fitted (no n_features_in_)"
        )
    if framework == "lightgbm":
        path = directory / "model.txt"
        estimator.booster_.save_model(str(path))
    else:
        import skops.io

        path = directory / "model.skops"
        skops.io.dump(estimator, path)
    classes = getattr(estimator, "classes_", None) if task == "classification" else None
    info = ModelFileInfo(
        framework=framework,
        file=path.name,
        sha256=file_sha256(path),
        task=task,
        n_features=int(n_features),
        classes=None if classes is None else np.asarray(classes).tolist(),
    )
    (directory / META_FILE).write_text(json.dumps(info.to_dict(), indent=2) + "\n")
    return info


def _identify(estimator: Any) -> tuple[str, str]:
    """(framework, task) of a fitted estimator that lockgate knows how to save safely."""
    try:
        import lightgbm

        if isinstance(estimator, lightgbm.LGBMModel):
            task = (
                "classification"
                if isinstance(estimator, lightgbm.LGBMClassifier)
                else ("regression")
            )
            return "lightgbm", task
    except ImportError:  # pragma: no cover - lightgbm is a core dependency
        pass
    from sklearn.base import BaseEstimator, is_classifier, is_regressor

    if isinstance(estimator, BaseEstimator) and (
        is_classifier(estimator) or is_regressor(estimator)
    ):
        return "sklearn", "classification" if is_classifier(estimator) else "regression"
    raise ModelError(
        f"cannot save a {type(estimator).__module__}.{type(estimator).__qualname__} safely;"
        " supported are LightGBM's scikit-learn models and scikit-learn classifiers/regressors",
        hint="return a lightgbm.LGBMModel or a scikit-learn estimator from your trainer",
    )


@dataclass
class VerifiedModel:
    """What every loaded model file has: its description, its path, the object read from
    it, and the check that a matrix fits it."""

    info: ModelFileInfo
    path: Path
    model: Any

    @property
    def task(self) -> str:
        return self.info.task

    def _check(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.info.n_features:
            raise DataError(
                f"model {self.path} expects a 2-D matrix with {self.info.n_features} columns;"
                f" got shape {X.shape}"
            )
        return X


@dataclass
class LoadedModel(VerifiedModel):
    """A verified, loaded model that predicts class indices (or values) from a matrix."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = self._check(X)
        if self.info.framework == "sklearn":
            return np.asarray(self.model.predict(X))
        if self.task == "classification":
            proba = self._lightgbm_proba(X)
            classes = self.info.classes or list(range(proba.shape[1]))
            return np.asarray(classes)[np.argmax(proba, axis=1)]
        return np.asarray(self.model.predict(X), dtype=np.float64)

    def predict_proba(self, X: np.ndarray) -> np.ndarray | None:
        """n x n_classes; column i is class index i (absent training classes get 0)."""
        if self.task != "classification":
            return None
        return self._aligned(self._raw_proba(self._check(X)))

    def predict_with_proba(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``predict`` and ``predict_proba`` from one pass of the model where it allows
        (LightGBM); the server calls this once per batch."""
        if self.info.framework == "lightgbm" and self.task == "classification":
            proba = self._lightgbm_proba(self._check(X))
            classes = self.info.classes or list(range(proba.shape[1]))
            return np.asarray(classes)[np.argmax(proba, axis=1)], self._aligned(proba)
        return self.predict(X), self.predict_proba(X)

    def _aligned(self, proba: np.ndarray | None) -> np.ndarray | None:
        classes = self.info.classes
        if proba is None or classes is None:
            return proba
        if all(isinstance(c, int) and c >= 0 for c in classes) and classes != list(
            range(len(classes))
        ):
            aligned = np.zeros((proba.shape[0], max(classes) + 1))
            aligned[:, classes] = proba
            return aligned
        return proba

    def _raw_proba(self, X: np.ndarray) -> np.ndarray | None:
        if self.info.framework == "lightgbm":
            return self._lightgbm_proba(X)
        if not callable(getattr(self.model, "predict_proba", None)):
            return None
        return np.asarray(self.model.predict_proba(X), dtype=np.float64)

    def _lightgbm_proba(self, X: np.ndarray) -> np.ndarray:
        """A binary Booster returns p(class 1) only; make it two columns like sklearn."""
        raw = np.asarray(self.model.predict(X), dtype=np.float64)
        return np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw


def verify_file(path: Path, expected: str, *, since: str, hint: str) -> None:
    """Refuse a model file whose sha256 is not the recorded one, before any reader sees it."""
    try:
        got = file_sha256(path)
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc}", path=str(path)) from exc
    if got != expected:
        raise ModelIntegrityError(
            f"model file {path} has sha256 {got}, expected {expected}; it changed after it was"
            f" {since}, so it is not loaded",
            path=str(path),
            hint=hint,
        )


def load_model(directory: str | Path, *, sha256: str | None = None) -> LoadedModel:
    """Check the file's sha256 (given, or model.json's), then load it with a safe reader."""
    directory = Path(directory)
    info = _read_info(directory / META_FILE)
    path = directory / info.file
    verify_file(
        path,
        sha256 or info.sha256,
        since="saved",
        hint="re-run the training step, or restore the file from the artifact store",
    )
    if info.framework == "lightgbm":
        model = _load_lightgbm(path)
    else:
        model = _load_skops(path)
    return LoadedModel(info=info, path=path, model=model)


def _read_info(meta: Path) -> ModelFileInfo:
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
        info = ModelFileInfo(**data)
    except FileNotFoundError as exc:
        raise ModelError(f"no {META_FILE} in {meta.parent}", path=str(meta)) from exc
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as exc:
        raise ModelError(f"{meta} is not a valid model description: {exc}", path=str(meta)) from exc
    if info.framework not in ("lightgbm", "sklearn"):
        raise ModelError(f"{meta}: unknown framework {info.framework!r}", path=str(meta))
    if Path(info.file).name != info.file:
        raise ModelError(f"{meta}: model file {info.file!r} must be a plain name", path=str(meta))
    return info


def _load_lightgbm(path: Path) -> Any:
    import lightgbm

    try:
        return lightgbm.Booster(model_file=str(path))
    except lightgbm.basic.LightGBMError as exc:
        raise ModelError(f"{path} is not a readable LightGBM model: {exc}", path=str(path)) from exc


def _load_skops(path: Path) -> Any:
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001 - any failure here means a corrupt file
        raise ModelError(f"{path} is not a readable skops file: {exc}", path=str(path)) from exc
    refused = [
        name
        for name in untrusted
        if not name.startswith(TRUSTED_PREFIXES) or name in REFUSED_BUILTINS
    ]
    if refused:
        raise ModelError(
            f"{path} contains types that are not trusted: {refused}; only types from"
            f" {[p.rstrip('.') for p in TRUSTED_PREFIXES]} are loaded",
            path=str(path),
        )
    try:
        return skops.io.load(path, trusted=untrusted)
    except Exception as exc:  # noqa: BLE001 - corrupt content past the type check
        raise ModelError(f"{path} could not be loaded by skops: {exc}", path=str(path)) from exc
