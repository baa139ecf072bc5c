"""Model files in safe formats, with a sha256 checked before anything is deserialised.

LightGBM and XGBoost are saved in their native text formats, scikit-learn through skops (no
pickle), PyTorch as safetensors weights with the architecture in their header::

    model/
      model.txt | model.xgb.json | model.skops | model.safetensors   the model itself
      model.json   {"framework", "file", "sha256", "task", "n_features", "classes",
                    "trusted_types"}

A skops file loads only when every type it names is trusted (``skops_trust``): skops'
defaults, lockgate's allowlist, or ``trusted_types``, the names a person trusted on purpose.
Every file's first bytes must be its format's own (``check_format``): a pickle or a PyTorch
archive is refused whatever its name.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lockgate.errors import DataError, ModelError, ModelIntegrityError
from lockgate.training import skops_trust
from lockgate.training.frameworks import Framework, frameworks, get_framework

FORMAT_VERSION = 1
META_FILE = "model.json"


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
    #: skops types beyond lockgate's allowlist that a person trusted on purpose
    trusted_types: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(
    estimator: Any, directory: str | Path, *, trust: Iterable[str] | None = None
) -> ModelFileInfo:
    """Write the estimator and ``model.json``; raise ModelError for an unsupported type, and
    UntrustedModelError for a scikit-learn model that names types outside lockgate's
    allowlist and ``trust`` (which is recorded, as the types it actually needed)."""
    trusted = skops_trust.check_trust(trust, option="train(trust=...)")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    framework, task = _identify(estimator)
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is None:
        raise ModelError(
            f"cannot save {type(estimator).__name__}: it is not fitted (no n_features_in_)"
        )
    file, needed = get_framework(framework).save(estimator, directory, trusted=trusted)
    path = directory / file
    classes = getattr(estimator, "classes_", None) if task == "classification" else None
    info = ModelFileInfo(
        framework=framework,
        file=path.name,
        sha256=file_sha256(path),
        task=task,
        n_features=int(n_features),
        classes=None if classes is None else np.asarray(classes).tolist(),
        trusted_types=needed,
    )
    (directory / META_FILE).write_text(json.dumps(info.to_dict(), indent=2) + "\n")
    return info


def _identify(estimator: Any) -> tuple[str, str]:
    """(framework, task) of a fitted estimator that a registered framework saves safely;
    the last registered is asked first, so a specific library (LightGBM, a third party's)
    wins over scikit-learn, whose base class many estimators share."""
    for framework in reversed(frameworks().values()):
        task = framework.claims(estimator)
        if task is not None:
            return framework.name, task
    raise ModelError(
        f"cannot save a {type(estimator).__module__}.{type(estimator).__qualname__} safely;"
        " supported are LightGBM and XGBoost scikit-learn models, scikit-learn"
        " classifiers/regressors and lockgate's PyTorch models",
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

    @property
    def framework(self) -> Framework:
        return get_framework(self.info.framework)

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
        framework = self.framework
        if self.task == "classification" and not framework.predicts_labels:
            return self._labels(framework.predict_proba(self.model, X))
        return framework.predict(self.model, X)

    def predict_proba(self, X: np.ndarray) -> np.ndarray | None:
        """n x n_classes; column i is class index i (absent training classes get 0)."""
        if self.task != "classification":
            return None
        return self._aligned(self.framework.predict_proba(self.model, self._check(X)))

    def predict_with_proba(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``predict`` and ``predict_proba`` from one pass of the model where it allows
        (a framework that takes labels from the probabilities); the server calls this once
        per batch."""
        if self.task == "classification" and not self.framework.predicts_labels:
            proba = self.framework.predict_proba(self.model, self._check(X))
            return self._labels(proba), self._aligned(proba)
        return self.predict(X), self.predict_proba(X)

    def _labels(self, proba: np.ndarray | None) -> np.ndarray:
        if proba is None:
            raise ModelError(f"model {self.path} answers no probabilities", path=str(self.path))
        classes = self.info.classes or list(range(proba.shape[1]))
        return np.asarray(classes)[np.argmax(proba, axis=1)]

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


def verify_file(path: Path, expected: str, *, since: str, hint: str) -> None:
    """Refuse a model file whose sha256 is not the recorded one, before any reader sees it."""
    try:
        got = file_sha256(path)
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc}", path=str(path)) from exc
    _compare(path, got, expected, since=since, hint=hint)


def read_verified(path: Path, expected: str, *, since: str, hint: str) -> bytes:
    """The bytes of a model file whose sha256 is the recorded one: the reader gets exactly
    the bytes that were checked, not a second read of a file that may have changed since."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc}", path=str(path)) from exc
    _compare(path, hashlib.sha256(data).hexdigest(), expected, since=since, hint=hint)
    return data


def _compare(path: Path, got: str, expected: str, *, since: str, hint: str) -> None:
    if got != expected:
        raise ModelIntegrityError(
            f"model file {path} has sha256 {got}, expected {expected}; it changed after it was"
            f" {since}, so it is not loaded",
            path=str(path),
            hint=hint,
        )


def load_model(
    directory: str | Path,
    *,
    sha256: str | None = None,
    trusted: Collection[str] | None = None,
) -> LoadedModel:
    """Check the file's sha256 (given, or model.json's), then load it with a safe reader.

    ``trusted`` is the skops types trusted beyond the allowlist, as the store recorded them;
    without it, model.json's ``trusted_types``, so only pass None where the folder itself was
    verified (its fingerprint) or is the caller's own.
    """
    directory = Path(directory)
    info = read_info(directory / META_FILE)
    path, model = load_checked(
        directory,
        info,
        sha256=sha256,
        trusted=trusted,
        since="saved",
        hint="re-run the training step, or restore the file from the artifact store",
    )
    return LoadedModel(info=info, path=path, model=model)


def load_checked(
    directory: Path,
    info: ModelFileInfo,
    *,
    sha256: str | None,
    trusted: Collection[str] | None,
    since: str,
    hint: str,
) -> tuple[Path, Any]:
    """(path, model): the file's bytes checked against ``sha256`` (or model.json's) and its
    format's header, then read by its framework; the one way any model file is loaded."""
    path = directory / info.file
    data = read_verified(path, sha256 or info.sha256, since=since, hint=hint)
    check_format(data, info.framework, path)
    model = get_framework(info.framework).load(
        data, path, trusted=info.trusted_types if trusted is None else trusted
    )
    return path, model


#: The first bytes of the formats lockgate reads; anything else is refused before a reader
#: sees it. A pickle (``\x80`` + protocol) or a PyTorch archive (a zip holding ``data.pkl``)
#: is named as such, whatever the file is called.
_ZIP = b"PK\x03\x04"


def check_format(data: bytes, framework: str, path: Path) -> None:
    """Refuse bytes that are not the framework's own format: pickles and PyTorch archives
    first (by content, not name), then anything without the format's header."""
    if len(data) >= 2 and data[0] == 0x80 and data[1] <= 5:
        _refuse(path, "is a pickle (it starts with a pickle protocol header)")
    if data.startswith(_ZIP):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile:
            names = []
        pickled = [n for n in names if n.rsplit("/", 1)[-1] == "data.pkl" or n.endswith(".pkl")]
        if pickled:
            _refuse(path, f"is a PyTorch or pickle archive (it holds {pickled[0]})")
    own = get_framework(framework)
    if not own.is_own_format(data):
        raise ModelError(f"{path} is not {own.format_name}", path=str(path))


def _refuse(path: Path, what: str) -> None:
    raise ModelError(
        f"{path} {what}; lockgate never loads pickles because loading one runs arbitrary code",
        path=str(path),
        hint="save scikit-learn models with skops.io.dump(model, 'model.skops'), LightGBM"
        " with booster.save_model('model.txt'), XGBoost with save_model('model.json'),"
        " PyTorch through trainer='torch_mlp' or 'pytorch:pkg.module:build' (safetensors),"
        " or convert to ONNX",
    )


def read_info(meta: Path) -> ModelFileInfo:
    """model.json, checked: a registered framework, a plain file name, trust as names."""
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
        info = ModelFileInfo(**data)
    except FileNotFoundError as exc:
        raise ModelError(f"no {META_FILE} in {meta.parent}", path=str(meta)) from exc
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as exc:
        raise ModelError(f"{meta} is not a valid model description: {exc}", path=str(meta)) from exc
    if info.framework not in frameworks():
        raise ModelError(f"{meta}: unknown framework {info.framework!r}", path=str(meta))
    if Path(info.file).name != info.file:
        raise ModelError(f"{meta}: model file {info.file!r} must be a plain name", path=str(meta))
    if not isinstance(info.trusted_types, list) or not all(
        isinstance(name, str) for name in info.trusted_types
    ):
        raise ModelError(f"{meta}: trusted_types must be a list of type names", path=str(meta))
    return info
