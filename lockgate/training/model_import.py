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

from lockgate.core.artifact_store import artifact_store_for
from lockgate.core.protocols import ArtifactStore
from lockgate.errors import (
    ConfigError,
    LockgateError,
    ModelError,
)
from lockgate.training import skops_trust
from lockgate.training.frameworks import frameworks, get_framework
from lockgate.training.model_files import (
    META_FILE,
    ModelFileInfo,
    VerifiedModel,
    check_format,
    file_sha256,
    load_checked,
    load_model,
    read_info,
)

IMPORTED_FILE = "imported.json"
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
            " PyTorch through trainer='torch_mlp' or 'pytorch:pkg.module:build' (safetensors),"
            " or convert to ONNX",
        )
    known = frameworks()
    if framework is not None:
        if framework not in known:
            raise ConfigError(f"framework must be one of {list(known)}; got {framework!r}")
        return framework
    suffixes: dict[str, str] = {}
    for each in known.values():
        for own in each.suffixes:
            suffixes.setdefault(own.lower(), each.name)
    found = suffixes.get(suffix)
    if found is None:
        raise ModelError(
            f"cannot tell the format of {path} from its suffix {suffix!r}; known are"
            f" {sorted(suffixes)}",
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
    own = get_framework(framework)
    trusted = skops_trust.check_trust(trust)
    if trusted and not own.takes_trust:
        raise ConfigError(f"--trust applies to skops files; {source} is a {framework} model")
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    name = own.file_name(source)
    copied = target / name
    data = source.read_bytes()
    check_format(data, framework, source)  # a pickle is named as such, whatever its suffix
    # refused naming the user's file; the copy is checked again when it is loaded
    own.check_import(data, source, trusted)
    copied.write_bytes(data)
    sha256 = file_sha256(copied)
    # A first model.json so that load_any_model's checks run on the copy, not the source.
    draft = ModelFileInfo(framework, name, sha256, "regression", 0, None, trusted_types=[])
    _write_json(target / META_FILE, draft.to_dict())
    _write_json(
        target / IMPORTED_FILE,
        {"source": str(source.resolve()), "source_sha256": sha256, "framework": framework},
    )
    try:
        loaded = load_any_model(target, sha256=sha256, trusted=trusted)
    except ModelError as exc:  # name the user's file, not the staged copy
        raise type(exc)(
            exc.message.replace(str(copied), str(source)), path=str(source), hint=exc.hint
        ) from exc
    task, width, found_classes = own.describe(loaded.model)
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
    info = read_info(directory / META_FILE)
    path, model = load_checked(
        directory,
        info,
        sha256=sha256,
        trusted=trusted,
        since="imported",
        hint="import it again with: lockgate models import",
    )
    return ImportedModel(info, path, model)


@dataclass
class ImportedModel(VerifiedModel):
    """An imported model behind the same ``predict`` / ``predict_proba`` as LoadedModel."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class indices for classification (positions in ``info.classes``), else values."""
        X = self._check(X)
        if self.task != "classification":
            return self._values(X)
        return np.argmax(self._proba(X), axis=1)

    def predict_proba(self, X: np.ndarray) -> np.ndarray | None:
        if self.task != "classification":
            return None
        return self._proba(self._check(X))

    def predict_with_proba(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``predict`` and ``predict_proba`` from one pass of the model (the server's call)."""
        X = self._check(X)
        if self.task != "classification":
            return self._values(X), None
        proba = self._proba(X)
        return np.argmax(proba, axis=1), proba

    def close(self) -> None:
        """Free what the runtime holds (an ONNX session); the GC would do it later."""
        self.model = None

    def _values(self, X: np.ndarray) -> np.ndarray:
        values = self.framework.predict(self.model, X)
        return np.asarray(values, dtype=np.float64).reshape(-1)

    def _proba(self, X: np.ndarray) -> np.ndarray:
        proba = self.framework.predict_proba(self.model, X)
        if proba is None:
            raise ModelError(f"model {self.path} answers no probabilities", path=str(self.path))
        return np.asarray(proba, dtype=np.float64)


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
    artifacts = artifact_store_for(artifact_root)
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
    artifacts: ArtifactStore,
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
    in one transaction (``core.publish``): a crash leaves an imported, registered version or
    nothing (its staging folder swept by the next run)."""
    import pyarrow as pa

    from lockgate.core.artifacts import PushedModel
    from lockgate.core.fingerprint import path_fingerprint
    from lockgate.core.publish import Publication
    from lockgate.metadata.registry import Registry
    from lockgate.training.transform import TransformGraph

    publication = Publication(artifacts, pipeline="lockgate-import", step="import")
    pushed = publication.stage("pushed_model", PushedModel)
    staging = pushed.path
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
        model_fingerprint = path_fingerprint(staging / "model")
    except BaseException:
        publication.discard()
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
        params=params,
        inputs={},
    )
    registry = Registry(store)
    number: list[int] = []
    try:
        pushed.properties = {
            "model_name": name,
            "model_sha256": info.sha256,
            "model_fingerprint": model_fingerprint,
            "framework": info.framework,
            "framework_description": get_framework(info.framework).description,
            "imported_from": str(Path(source).resolve()),
            "trusted_types": info.trusted_types,
        }
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
        publication.publish(
            execution,
            lambda outputs: store.publish_execution(
                execution,
                outputs,
                within=lambda transaction: number.append(
                    registry.register_within(
                        transaction, name, pushed, blessed=bless, properties=properties
                    )
                ),
            ),
        )
    except BaseException as exc:
        publication.discard()
        store.fail_execution(execution, str(exc))
        store.finish_run(run_id, "failed", str(exc))
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
