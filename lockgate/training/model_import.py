"""Models trained elsewhere, brought in so they serve and evaluate like a pipeline's own.

Only formats that load without running code are accepted: scikit-learn through skops (its
types checked as ``model_files`` does; types beyond the allowlist only with ``trust``, which
is recorded in ``model.json`` and the registry version), LightGBM's text model, XGBoost's
JSON/UBJ model and ONNX without custom operators or external data (``onnx_checks``). A
pickle is refused by name (``.pkl``, ``.joblib``, ``.pt``) and by content, whatever its name.
The imported folder is the same ``model/`` a pipeline writes, plus ``imported.json`` saying
where it came from::

    model/
      model.skops | model.txt | model.xgb.json | model.ubj | model.onnx
      model.json      {"framework", "file", "sha256", "task", "n_features", "classes",
                       "trusted_types"}
      imported.json   {"source", "source_sha256", "framework"}

``load_any_model`` loads either kind after checking the sha256. Every loaded model answers
``predict`` with class *indices* (positions in ``classes``) for classification, as the
pipeline's own models do, so the transform's ``decode_label`` and the evaluator's metrics
work unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lockgate.core.artifact_store import LocalArtifactStore
from lockgate.errors import (
    ConfigError,
    LockgateError,
    ModelError,
)
from lockgate.training import skops_trust
from lockgate.training.model_files import (
    META_FILE,
    ModelFileInfo,
    VerifiedModel,
    check_format,
    file_sha256,
    load_model,
    read_verified,
)

IMPORTED_FILE = "imported.json"
FRAMEWORKS = ("sklearn", "lightgbm", "xgboost", "onnx")
_SUFFIXES = {
    ".skops": "sklearn",
    ".txt": "lightgbm",
    ".json": "xgboost",
    ".ubj": "xgboost",
    ".onnx": "onnx",
}
_TARGET_NAMES = {
    "sklearn": "model.skops",
    "lightgbm": "model.txt",
    "onnx": "model.onnx",
}
_PICKLES = (".pkl", ".pickle", ".joblib", ".sav", ".pt", ".pth", ".dill", ".cloudpickle")


def detect_framework(path: Path, framework: str | None = None) -> str:
    """The framework of a model file, from ``framework`` or the file's suffix."""
    suffix = path.suffix.lower()
    if suffix in _PICKLES:
        raise ModelError(
            f"{path} looks like a pickle ({suffix}); lockgate never loads pickles because"
            " loading one runs arbitrary code",
            path=str(path),
            hint="save scikit-learn models with skops.io.dump(model, 'model.skops'), LightGBM"
            " with booster.save_model('model.txt'), XGBoost with save_model('model.json'),"
            " or convert to ONNX",
        )
    if framework is not None:
        if framework not in FRAMEWORKS:
            raise ConfigError(f"framework must be one of {list(FRAMEWORKS)}; got {framework!r}")
        return framework
    found = _SUFFIXES.get(suffix)
    if found is None:
        raise ModelError(
            f"cannot tell the format of {path} from its suffix {suffix!r}; known are"
            f" {sorted(_SUFFIXES)}",
            path=str(path),
            hint="rename the file, or name the framework with --framework",
        )
    return found


def import_model_files(
    source: str | Path,
    target: str | Path,
    *,
    framework: str | None = None,
    classes: list[Any] | None = None,
    n_features: int | None = None,
    trust: Iterable[str] | None = None,
) -> ModelFileInfo:
    """Copy ``source`` into the folder ``target`` (as ``model/`` expects), load it once to
    learn its task, width and classes, and write ``model.json`` and ``imported.json``.

    ``classes`` names the classes where the file only knows indices (LightGBM, XGBoost);
    ``n_features`` is needed only for an ONNX model whose input width is dynamic; ``trust``
    names skops types beyond lockgate's allowlist that the caller vouches for (each must be
    one the file holds).
    """
    source = Path(source)
    if not source.is_file():
        raise ModelError(f"model file {source} not found", path=str(source))
    framework = detect_framework(source, framework)
    trusted = skops_trust.check_trust(trust)
    if trusted and framework != "sklearn":
        raise ConfigError(f"--trust applies to skops files; {source} is a {framework} model")
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    if framework == "xgboost":
        name = "model.ubj" if source.suffix.lower() == ".ubj" else "model.xgb.json"
    else:
        name = _TARGET_NAMES[framework]
    copied = target / name
    data = source.read_bytes()
    check_format(data, framework, source)  # a pickle is named as such, whatever its suffix
    if framework == "sklearn":  # refused naming the user's file; the copy is checked again
        untrusted = skops_trust.untrusted_types(data, source)
        skops_trust.refuse_untrusted(untrusted, trusted, source, hint=skops_trust.import_hint)
        _check_trust_is_needed(untrusted, trusted, source)
    copied.write_bytes(data)
    sha256 = file_sha256(copied)
    # A first model.json so that load_any_model's checks run on the copy, not the source.
    draft = ModelFileInfo(framework, name, sha256, "regression", 0, None, trusted_types=[])
    _write_json(target / META_FILE, draft.to_dict())
    _write_json(
        target / IMPORTED_FILE,
        {"source": str(source.resolve()), "source_sha256": sha256, "framework": framework},
    )
    loaded = load_any_model(target, sha256=sha256, trusted=trusted)
    task, width, found_classes = _describe(loaded, framework)
    width = width or n_features
    if width is None:
        raise ModelError(
            f"{source}: the model's input width is not fixed; give the features explicitly",
            path=str(source),
        )
    if task == "classification":
        if classes is not None:
            if found_classes is not None and len(found_classes) != len(classes):
                raise ConfigError(
                    f"--classes names {len(classes)} classes but the model has"
                    f" {len(found_classes)}: {found_classes}"
                )
            found_classes = list(classes)
        if found_classes is None:
            raise ModelError(f"{source}: cannot tell the model's classes", path=str(source))
    info = ModelFileInfo(
        framework=framework,
        file=name,
        sha256=sha256,
        task=task,
        n_features=int(width),
        classes=found_classes if task == "classification" else None,
        trusted_types=list(trusted),
    )
    _write_json(target / META_FILE, info.to_dict())
    return info


def _check_trust_is_needed(untrusted: list[str], trusted: Collection[str], path: Path) -> None:
    """Trust is recorded only for types the file holds beyond the allowlist: a typo, or a
    type it does not need, is an error rather than a standing permission."""
    needed = skops_trust.needed_trust(untrusted)
    unused = sorted(set(trusted) - set(needed))
    if unused:
        raise ConfigError(
            f"--trust names {unused}, which {path.name} does not hold beyond what lockgate"
            f" trusts already; it needs {needed or 'no --trust'}"
        )


def identity_transform(features: list[str], info: ModelFileInfo, *, label: str = "label") -> Any:
    """A TransformGraph that passes numeric columns through unchanged (missing -> 0), for a
    model trained on raw numbers; its label classes are the model's."""
    from lockgate.training.transform import FeatureTransform, TransformGraph

    if len(set(features)) != len(features) or not features:
        raise ConfigError(f"--features must name distinct columns; got {features}")
    columns = tuple(FeatureTransform(name, "numeric", mean=0.0, std=1.0) for name in features)
    graph = TransformGraph(
        label=label,
        task="classification" if info.task == "classification" else "regression",
        columns=columns,
        label_classes=info.classes,
    )
    check_transform_fits(graph, info)
    return graph


def check_transform_fits(transform: Any, info: ModelFileInfo) -> None:
    """The transform must produce the model's width, task and classes, or serving fails later."""
    width = len(transform.feature_names_out)
    if width != info.n_features:
        raise ConfigError(
            f"the transform produces {width} columns {transform.feature_names_out[:8]} but the"
            f" model expects {info.n_features}",
            hint="list exactly the model's input columns, in its order",
        )
    if transform.task != info.task:
        raise ConfigError(f"the transform's task is {transform.task}; the model's is {info.task}")
    if info.task == "classification" and list(transform.label_classes or []) != list(
        info.classes or []
    ):
        raise ConfigError(
            f"the transform's label classes {transform.label_classes} differ from the model's"
            f" {info.classes}",
            hint="name the classes in the model's order with --classes",
        )


def load_any_model(
    directory: str | Path,
    *,
    sha256: str | None = None,
    trusted: Collection[str] | None = None,
) -> Any:
    """A pipeline's model (``model_files.load_model``) or an imported one, sha256 checked.

    ``trusted``: the skops types trusted beyond the allowlist, as recorded in the store;
    None reads model.json's, so pass None only for a folder whose fingerprint was checked.
    """
    directory = Path(directory)
    if not (directory / IMPORTED_FILE).exists():
        return load_model(directory, sha256=sha256, trusted=trusted)
    info = _read_info(directory)
    path = directory / info.file
    expected = sha256 or info.sha256
    data = read_verified(
        path, expected, since="imported", hint="import it again with: lockgate models import"
    )
    check_format(data, info.framework, path)
    if info.framework in ("sklearn", "lightgbm"):
        loaded = load_model(directory, sha256=expected, trusted=trusted)
        return ImportedModel(info, path, loaded.model)
    if info.framework == "xgboost":
        return ImportedModel(info, path, _load_xgboost(path))
    return ImportedModel(info, path, _OnnxModel(data, path))


@dataclass
class ImportedModel(VerifiedModel):
    """An imported model behind the same ``predict`` / ``predict_proba`` as LoadedModel."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class indices for classification (positions in ``info.classes``), else values."""
        X = self._check(X)
        if self.task != "classification":
            return np.asarray(self._values(X), dtype=np.float64).reshape(-1)
        return np.argmax(self._proba(X), axis=1)

    def predict_proba(self, X: np.ndarray) -> np.ndarray | None:
        if self.task != "classification":
            return None
        return self._proba(self._check(X))

    def predict_with_proba(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``predict`` and ``predict_proba`` from one pass of the model (the server's call)."""
        X = self._check(X)
        if self.task != "classification":
            return np.asarray(self._values(X), dtype=np.float64).reshape(-1), None
        proba = self._proba(X)
        return np.argmax(proba, axis=1), proba

    def close(self) -> None:
        """Free what the runtime holds (an ONNX session); the GC would do it later."""
        self.model = None

    def _values(self, X: np.ndarray) -> np.ndarray:
        framework = self.info.framework
        if framework == "xgboost":
            return np.asarray(self.model.inplace_predict(X))
        if framework == "onnx":
            return self.model.run(X)[0]
        return np.asarray(self.model.predict(X))

    def _proba(self, X: np.ndarray) -> np.ndarray:
        framework = self.info.framework
        if framework == "sklearn":
            proba = np.asarray(self.model.predict_proba(X), dtype=np.float64)
        elif framework == "lightgbm":
            raw = np.asarray(self.model.predict(X), dtype=np.float64)
            proba = np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw
        elif framework == "xgboost":
            margin = np.asarray(self.model.inplace_predict(X, predict_type="margin"))
            proba = _margin_to_proba(margin)
        else:  # ONNX answers float32: rows miss 1.0 by more than metrics tolerate
            proba = np.asarray(self.model.run(X)[1], dtype=np.float64)
            proba = proba / proba.sum(axis=1, keepdims=True)
        return np.asarray(proba, dtype=np.float64)


def _margin_to_proba(margin: np.ndarray) -> np.ndarray:
    if margin.ndim == 1 or margin.shape[1] == 1:
        p = 1.0 / (1.0 + np.exp(-margin.reshape(-1)))
        return np.column_stack([1.0 - p, p])
    shifted = np.exp(margin - margin.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class _OnnxModel:
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


def _load_xgboost(path: Path) -> Any:
    try:
        import xgboost
    except ImportError as exc:
        raise ModelError(
            "XGBoost models need xgboost", hint='pip install "lockgate[xgboost]"'
        ) from exc
    booster = xgboost.Booster()
    try:
        booster.load_model(str(path))
    except xgboost.core.XGBoostError as exc:
        raise ModelError(f"{path} is not a readable XGBoost model: {exc}", path=str(path)) from exc
    return booster


def _describe(model: Any, framework: str) -> tuple[str, int | None, list[Any] | None]:
    """(task, n_features, classes) read from the loaded model itself."""
    inner = model.model
    if framework == "sklearn":
        from sklearn.base import is_classifier, is_regressor

        if not (is_classifier(inner) or is_regressor(inner)):
            raise ModelError(f"{type(inner).__name__} is neither a classifier nor a regressor")
        width = getattr(inner, "n_features_in_", None)
        if is_classifier(inner):
            return "classification", width, np.asarray(inner.classes_).tolist()
        return "regression", width, None
    if framework == "lightgbm":
        dump = inner.dump_model(num_iteration=0)
        objective = str(dump.get("objective", ""))
        width = inner.num_feature()
        if objective.startswith(("binary", "multiclass", "multiclassova", "cross_entropy")):
            k = max(2, int(dump.get("num_class", 1)))
            return "classification", width, list(range(k))
        return "regression", width, None
    if framework == "xgboost":
        config = json.loads(inner.save_config())["learner"]
        objective = config["objective"]["name"]
        width = inner.num_features()
        if objective.startswith(("binary:", "multi:")):
            k = max(2, int(config["learner_model_param"].get("num_class", "0")))
            return "classification", width, list(range(k))
        if objective.startswith("rank:"):
            raise ModelError(f"XGBoost ranking objective {objective!r} cannot be served")
        return "regression", width, None
    if inner.n_outputs >= 2:
        return "classification", inner.n_features, inner.classes
    return "regression", inner.n_features, None


def _read_info(directory: Path) -> ModelFileInfo:
    try:
        data = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        info = ModelFileInfo(**data)
    except (OSError, json.JSONDecodeError, TypeError) as exc:
        raise ModelError(
            f"{directory / META_FILE} is not a valid model description: {exc}"
        ) from exc
    if info.framework not in FRAMEWORKS or Path(info.file).name != info.file:
        raise ModelError(f"{directory / META_FILE}: unusable framework or file name")
    return info


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def import_model(
    store: Any,
    artifact_root: str | Path,
    source: str | Path,
    *,
    name: str,
    transform: str | Path | None = None,
    features: list[str] | None = None,
    label: str = "label",
    classes: list[Any] | None = None,
    framework: str | None = None,
    samples: str | Path | None = None,
    bless: bool = False,
    reason: str | None = None,
    trust: Iterable[str] | None = None,
) -> Any:
    """Onboard a model trained elsewhere: a ``PushedModel`` (files copied, sha256 and
    fingerprint recorded) and a new registry version, unblessed unless ``bless`` with a
    ``reason``. Returns the ``ModelVersion``; no alias moves (promote it separately).

    ``trust`` names skops types beyond lockgate's allowlist that you vouch for; they are
    recorded as ``trusted_types`` in model.json, the PushedModel and the version, and the
    server trusts exactly those when it loads the version."""
    if bless and not reason:
        raise ConfigError("--bless needs a --reason: an import skips the evaluator's gate")
    if (transform is None) == (features is None):
        raise ConfigError(
            "an imported model needs exactly one of --transform FILE (a transform.json) or"
            " --features a,b,c (its numeric input columns, passed through unchanged)"
        )
    artifacts = LocalArtifactStore(artifact_root)
    try:
        return _import_into(
            store,
            artifacts,
            source,
            name=name,
            transform=transform,
            features=features,
            label=label,
            classes=classes,
            framework=framework,
            samples=samples,
            bless=bless,
            reason=reason,
            trust=trust,
        )
    finally:
        artifacts.close()


def _import_into(
    store: Any,
    artifacts: LocalArtifactStore,
    source: str | Path,
    *,
    name: str,
    transform: str | Path | None,
    features: list[str] | None,
    label: str,
    classes: list[Any] | None,
    framework: str | None,
    samples: str | Path | None,
    bless: bool,
    reason: str | None,
    trust: Iterable[str] | None,
) -> Any:
    """Stage and check the files, then publish the PushedModel and register its version
    in one transaction: a crash leaves an imported, registered version or nothing (its
    staging folder swept by the next run)."""
    import pyarrow as pa

    from lockgate.core.artifacts import PushedModel
    from lockgate.core.fingerprint import path_fingerprint
    from lockgate.metadata.registry import Registry
    from lockgate.training.transform import TransformGraph

    staging = artifacts.staging_dir("import", name)
    try:
        info = import_model_files(
            source,
            staging / "model",
            framework=framework,
            classes=classes,
            n_features=len(features) if features else None,
            trust=trust,
        )
        if transform is not None:
            folder = Path(transform)
            graph = TransformGraph.load(folder if folder.is_dir() else folder.parent)
            check_transform_fits(graph, info)
        else:
            graph = identity_transform(list(features or []), info, label=label)
        graph.save(staging / "transform")
        rows = _samples(samples, graph)
        loaded = load_any_model(staging / "model", sha256=info.sha256, trusted=info.trusted_types)
        try:
            loaded.predict(graph.apply(pa.table(rows)))
        except LockgateError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure: the model cannot serve
            raise ModelError(
                f"{source} loads but cannot predict on its transform's output: {exc}"
            ) from exc
        _write_json(staging / "samples.json", {"inputs": rows})
    except BaseException:
        artifacts.discard(staging)
        raise
    run_id = store.start_run("lockgate-import", {"source": str(Path(source).resolve())})
    params = {
        "model_name": name,
        "framework": info.framework,
        "bless": bless,
        "trusted_types": info.trusted_types,
    }
    execution = store.start_execution(
        run_id,
        step="import",
        component="models.import",
        cache_key=None,
        code_fingerprint=None,
        params=json.dumps(params),
        inputs={},
    )
    target = artifacts.final_dir("lockgate-import", "import", "pushed_model", execution)
    registry = Registry(store)
    number: list[int] = []
    try:
        artifacts.publish(staging, target)
        pushed = PushedModel(
            uri=str(target),
            properties={
                "model_name": name,
                "model_sha256": info.sha256,
                "model_fingerprint": path_fingerprint(target / "model"),
                "framework": info.framework,
                "imported_from": str(Path(source).resolve()),
                "trusted_types": info.trusted_types,
            },
            fingerprint=path_fingerprint(target),
        )
        properties: dict[str, Any] = {
            "model_fingerprint": pushed.properties["model_fingerprint"],
            "run_id": run_id,
            "source": "import",
            "framework": info.framework,
            "imported_from": pushed.properties["imported_from"],
            "trusted_types": info.trusted_types,
        }
        if bless:
            properties["bless_reason"] = reason
        store.publish_execution(
            execution,
            {"pushed_model": pushed},
            within=lambda transaction: number.append(
                registry.register_within(
                    transaction, name, pushed, blessed=bless, properties=properties
                )
            ),
        )
    except BaseException as exc:
        store.fail_execution(execution, str(exc))
        store.finish_run(run_id, "failed", str(exc))
        artifacts.discard(staging)
        artifacts.discard(target)
        raise
    store.finish_run(run_id, "complete")
    return registry.get(name, number[0])


def _samples(path: str | Path | None, graph: Any) -> dict[str, list[Any]]:
    """Warm-up rows: the given samples file (``{"inputs": {column: [values]}}``), else
    typical values: numeric columns' means, categorical columns' commonest values."""
    if path is not None:
        try:
            rows = json.loads(Path(path).read_text(encoding="utf-8"))["inputs"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f'{path} is not a samples file ({{"inputs": {{column: [values]}}}}): {exc}'
            ) from exc
        missing = [f for f in graph.features if f not in rows]
        if missing:
            raise ConfigError(f"{path}: samples lack the input(s) {missing}")
        return {f: list(rows[f]) for f in graph.features}
    out: dict[str, list[Any]] = {}
    for column in graph.columns:
        if column.kind == "numeric":
            out[column.name] = [column.mean, column.mean + column.std]
        else:
            values = list(column.vocabulary[:2]) or [None]
            out[column.name] = [values[0], values[-1]]
    return out
