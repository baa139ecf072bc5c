"""PyTorch: ``trainer="torch_mlp"`` (a tabular MLP lockgate declares) or the user's own
``nn.Module`` through an importable function, ``trainer="pytorch:pkg.models:build"`` with
``build(n_features, n_outputs, params) -> nn.Module``. Both are fitted by one loop
(``pytorch_nets``): Adam(W), cross-entropy (softmax probabilities) or MSE on a standardised
target, seeded, single-threaded, early stopping on the eval split restoring the best epoch.

A model is one safetensors file, weights only, whose header also carries the architecture
that rebuilds the module (nothing is ever unpickled, ``torch.load`` is never called)::

    model.safetensors
      8 bytes    header length n (little-endian)
      n bytes    JSON: tensor names, dtypes, shapes, offsets, and
                 "__metadata__": {"lockgate": "<the architecture, as JSON>"}
      ...        the float32 tensors

    the architecture: {"format": "lockgate.pytorch/1", "task", "n_features", "n_outputs",
      "classes", "target": {"mean", "std"} | null, "dtype": "float32",
      "module": {"kind": "mlp", "hidden_layers", "activation", "dropout"}
              | {"kind": "function", "function": "pkg.models:build", "params": {...}}}

The sha256 in ``model.json`` covers that one file, so the architecture is checked with the
weights. A module built by a function imports and calls it when loaded: that function must
be trusted by name (``pkg.models.build``). A pipeline that trains with it trusts it by
naming it as the trainer (recorded in ``trusted_types``); an imported file needs
``--trust pkg.models.build``.

Training and inference use float32 throughout; answers are returned as float64 (the
softmax taken in float64 from the float32 logits, so rows sum to 1). The loaded module is
kept on the model object in eval mode with gradients off; each call is one forward pass
under ``torch.inference_mode`` (a one-row ``predict_with_proba`` takes ~50 us on a 2-core
CPU). Training is deterministic on the CPU; on CUDA it is seeded but not bit-exact.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lockgate.errors import ConfigError, ModelError, UntrustedModelError, did_you_mean
from lockgate.training import skops_trust
from lockgate.training.frameworks.base import Report

FORMAT = "lockgate.pytorch/1"
META_KEY = "lockgate"
#: the training loop's parameters, with lockgate's defaults
LOOP_DEFAULTS: dict[str, Any] = {
    "learning_rate": 1e-3,
    "epochs": 100,
    "batch_size": 64,
    "weight_decay": 0.0,
    "early_stopping_rounds": None,
}
#: the built-in MLP's parameters, with lockgate's defaults
MLP_DEFAULTS: dict[str, Any] = {"hidden_layers": [64, 32], "activation": "relu", "dropout": 0.0}
ACTIVATIONS = ("relu", "tanh", "gelu")
_MAX_HEADER = 100 * 1024 * 1024
INSTALL_HINT = 'pip install "lockgate[torch]"'


@dataclass
class TorchTrainer:
    """An unfitted PyTorch model: what to build (``module``: the MLP's or the function's
    description), how to fit it (``loop``), the seed and the device."""

    task: str
    module: dict[str, Any]
    loop: dict[str, Any]
    seed: int
    device: str = "cpu"
    label: str = "torch_mlp"


@dataclass
class TorchModel:
    """A fitted (or loaded) PyTorch model: the module on the CPU in eval mode and the
    architecture that rebuilds it. ``predict`` / ``predict_proba`` answer as scikit-learn's
    do (class labels, then probabilities per class of ``classes_``)."""

    architecture: dict[str, Any]
    module: Any
    #: the eval loss of each epoch, when an eval split was watched
    eval_losses_: list[float] = field(default_factory=list)
    #: epochs kept (the best epoch, 1-based) when early stopping was asked for
    best_iteration_: int | None = None

    @property
    def task(self) -> str:
        return str(self.architecture["task"])

    @property
    def n_features_in_(self) -> int:
        return int(self.architecture["n_features"])

    @property
    def classes_(self) -> np.ndarray | None:
        classes = self.architecture.get("classes")
        return None if classes is None else np.asarray(classes)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        from lockgate.training.frameworks import pytorch_nets

        return pytorch_nets.proba(self.module, X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        from lockgate.training.frameworks import pytorch_nets

        if self.task == "classification":
            classes = self.classes_
            assert classes is not None  # a classifier's architecture always lists them
            return classes[np.argmax(pytorch_nets.proba(self.module, X), axis=1)]
        return pytorch_nets.values(self.module, X, self.architecture["target"])


class PyTorchFramework:
    name = "pytorch"
    description = "PyTorch modules saved as safetensors weights with their architecture"
    suffixes = (".safetensors",)
    takes_trust = True  # a module built by the user's function names that function
    predicts_labels = False
    format_name = "a safetensors file (8-byte header length, then a JSON header)"
    library = "torch"
    trainers = {"torch_mlp": ("classification", "regression")}
    devices = ("cpu", "cuda")

    def estimator(
        self, spec: str, task: str, params: dict[str, Any], seed: int, *, device: str = "cpu"
    ) -> TorchTrainer:
        """``"torch_mlp"``, or ``"pkg.module:function"`` building the user's module; the
        loop's parameters are checked here, a function gets the rest."""
        import_torch()
        loop = {**LOOP_DEFAULTS, **{k: v for k, v in params.items() if k in LOOP_DEFAULTS}}
        rest = {k: v for k, v in params.items() if k not in LOOP_DEFAULTS}
        _check_loop(loop, spec)
        if spec == "torch_mlp":
            known = {*LOOP_DEFAULTS, *MLP_DEFAULTS}
            for name in rest:
                if name not in MLP_DEFAULTS:
                    raise ConfigError(
                        f"unknown parameter '{name}' for trainer 'torch_mlp'; parameters are"
                        f" {sorted(known)}{did_you_mean(name, known)}"
                    )
            module = {"kind": "mlp", **MLP_DEFAULTS, **rest}
            _check_mlp(module)
            return TorchTrainer(task, module, loop, seed, device)
        import_builder(spec, for_what=f"trainer 'pytorch:{spec}'")  # importable now, or say so
        for name in rest:  # the function gets these: a loop parameter misspelt would be lost
            close = did_you_mean(name, LOOP_DEFAULTS)
            if close:
                raise ConfigError(
                    f"parameter '{name}' of trainer 'pytorch:{spec}' is not one of the training"
                    f" loop's {sorted(LOOP_DEFAULTS)}, so it would go to your function{close}",
                    hint="rename it in your function's parameters if it is really its own",
                )
        try:
            json.dumps(rest, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"trainer 'pytorch:{spec}': the parameters its function gets are recorded"
                f" with the model as JSON, and {rest!r} is not JSON: {exc}"
            ) from exc
        module = {"kind": "function", "function": spec, "params": rest}
        return TorchTrainer(task, module, loop, seed, device, label=f"pytorch:{spec}")

    def fit(
        self,
        estimator: Any,
        X: np.ndarray,
        y: np.ndarray,
        *,
        eval_set: tuple[np.ndarray, np.ndarray] | None,
        sample_weight: np.ndarray | None = None,
        base_model: Any = None,
        report: Report | None = None,
    ) -> TorchModel:
        """``base_model`` (a loaded TorchModel of the same architecture) gives the starting
        weights, its classes and its target scaling; ``report`` gets each epoch's eval loss."""
        from lockgate.training.frameworks import pytorch_nets

        stopped: list[BaseException] = []

        def reporting(epoch: int, loss: float) -> None:
            assert report is not None
            try:
                report(epoch, loss)
            except BaseException as exc:
                stopped.append(exc)  # the caller's way to stop: passed on as it is
                raise

        try:
            return pytorch_nets.fit(
                estimator,
                X,
                y,
                eval_set=eval_set,
                sample_weight=sample_weight,
                base_model=base_model,
                report=None if report is None else reporting,
            )
        except (RuntimeError, IndexError) as exc:  # torch's own: shapes, dtypes, devices
            if exc in stopped:
                raise
            raise ModelError(
                f"trainer '{estimator.label}' failed to fit: {type(exc).__name__}: {exc}",
                hint="a module must map (batch, n_features) float32 to (batch, n_outputs)",
            ) from exc

    def claims(self, estimator: Any) -> str | None:
        return estimator.task if isinstance(estimator, TorchModel) else None

    def save(
        self, estimator: Any, folder: Path, *, trusted: Collection[str]
    ) -> tuple[str, list[str]]:
        from lockgate.training.frameworks import pytorch_nets

        needed = needed_trust(estimator.architecture)
        extra = sorted(set(trusted) - set(needed))
        if extra:
            raise ConfigError(
                f"train(trust=...) names {extra}, which this PyTorch model does not need; it"
                f" applies to skops files and to the function that builds a module ({needed})"
            )
        path = folder / "model.safetensors"
        path.write_bytes(pytorch_nets.to_bytes(estimator))
        return path.name, needed

    def file_name(self, source: Path) -> str:
        return "model.safetensors"

    def check_import(self, data: bytes, source: Path, trusted: Collection[str]) -> None:
        architecture = read_architecture(data, source)
        _refuse_untrusted(architecture, trusted, source)
        needed = needed_trust(architecture)
        extra = sorted(set(trusted) - set(needed))
        if extra:
            raise ConfigError(f"--trust {extra}: {source} does not name them (it names {needed})")

    def is_own_format(self, data: bytes) -> bool:
        if len(data) < 9:
            return False
        size = int.from_bytes(data[:8], "little")
        return 2 <= size <= _MAX_HEADER and data[8:9] == b"{"

    def load(self, data: bytes, path: Path, *, trusted: Collection[str]) -> TorchModel:
        """The architecture from the header, checked (a function must be trusted), the
        module rebuilt and its weights read by ``safetensors.torch.load`` from ``data``."""
        from lockgate.training.frameworks import pytorch_nets

        architecture = read_architecture(data, path)
        _refuse_untrusted(architecture, trusted, path)
        return pytorch_nets.from_bytes(data, architecture, path)

    def predict(self, model: Any, X: np.ndarray) -> np.ndarray:
        from lockgate.training.frameworks import pytorch_nets

        return pytorch_nets.values(model.module, X, model.architecture["target"])

    def predict_proba(self, model: Any, X: np.ndarray) -> np.ndarray | None:
        from lockgate.training.frameworks import pytorch_nets

        if model.task != "classification":
            return None
        return pytorch_nets.proba(model.module, X)

    def describe(self, model: Any) -> tuple[str, int | None, list[Any] | None]:
        classes = model.architecture.get("classes")
        return model.task, model.n_features_in_, None if classes is None else list(classes)


def import_torch() -> Any:
    """torch, or a ModelError naming the extra that installs it."""
    try:
        import torch
    except ImportError as exc:
        raise ModelError(
            "PyTorch models need torch and safetensors, which are not installed",
            hint=INSTALL_HINT,
        ) from exc
    return torch


def _check_loop(loop: dict[str, Any], spec: str) -> None:
    checks = {
        "learning_rate": (float, lambda v: v > 0, "a number > 0"),
        "epochs": (int, lambda v: v >= 1, "an integer >= 1"),
        "batch_size": (int, lambda v: v >= 1, "an integer >= 1"),
        "weight_decay": (float, lambda v: v >= 0, "a number >= 0"),
        "early_stopping_rounds": (int, lambda v: v >= 1, "None or an integer >= 1"),
    }
    for name, (kind, ok, expected) in checks.items():
        value = loop[name]
        if value is None and name == "early_stopping_rounds":
            continue
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or (kind is int and not isinstance(value, int)) or not ok(value):
            raise ConfigError(
                f"The '{name}' parameter of trainer '{spec}' must be {expected}."
                f" Got {value!r} instead."
            )


def _check_mlp(module: dict[str, Any]) -> None:
    layers = module["hidden_layers"]
    if not isinstance(layers, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in layers
    ):
        raise ConfigError(
            "The 'hidden_layers' parameter of trainer 'torch_mlp' must be a list of layer"
            f" widths (integers >= 1), e.g. [64, 32]. Got {layers!r} instead."
        )
    if module["activation"] not in ACTIVATIONS:
        raise ConfigError(
            f"The 'activation' parameter of trainer 'torch_mlp' must be one of"
            f" {list(ACTIVATIONS)}. Got {module['activation']!r} instead."
            f"{did_you_mean(str(module['activation']), ACTIVATIONS)}"
        )
    dropout = module["dropout"]
    if not isinstance(dropout, int | float) or isinstance(dropout, bool) or not 0 <= dropout < 1:
        raise ConfigError(
            "The 'dropout' parameter of trainer 'torch_mlp' must be a number in [0, 1)."
            f" Got {dropout!r} instead."
        )


def needed_trust(architecture: dict[str, Any]) -> list[str]:
    """The dotted name of the function that builds the module (none for the MLP)."""
    module = architecture["module"]
    return [module["function"].replace(":", ".")] if module["kind"] == "function" else []


def _refuse_untrusted(architecture: dict[str, Any], trusted: Collection[str], path: Path) -> None:
    for name in needed_trust(architecture):
        never = skops_trust.never_trusted(name)
        if name in trusted and not never:
            continue
        raise UntrustedModelError(
            f"{path} is built by the function {name!r}, which is not trusted; loading it"
            " would import and call that function; nothing in it was run",
            types=[name],
            path=str(path),
            hint="this file can never be loaded: its function runs code or touches the system"
            if never
            else f"if you know the function and trust the file's author: lockgate models"
            f" import FILE ... --trust {name}",
        )


def import_builder(function: str, *, for_what: str) -> Any:
    """The function ``"pkg.module:name"``, imported; a ConfigError when it is not one."""
    import importlib

    module_name, _, name = function.partition(":")
    if not module_name or not name or not name.isidentifier():
        raise ConfigError(
            f"{for_what}: name the function that builds your module as 'package.module:function'"
            f" (e.g. 'pytorch:mypackage.models:build'); got {function!r}"
        )
    try:
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ModelError(
            f"{for_what}: cannot import the function {function!r} that builds the module: {exc}",
            hint="install the package that defines it (or run from the project folder that"
            " holds it) where the model is trained, evaluated and served",
        ) from exc
    if not callable(found):
        raise ConfigError(f"{for_what}: {function!r} is not a function")
    return found


def read_architecture(data: bytes, path: Path) -> dict[str, Any]:
    """The architecture in a safetensors header, checked for shape; a ModelError naming
    what is wrong (a truncated file, a header without lockgate's metadata)."""
    if len(data) < 8:
        raise ModelError(f"{path} is truncated: {len(data)} bytes", path=str(path))
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8:
        raise ModelError(
            f"{path} is truncated: its header says {size} bytes, the file has {len(data) - 8}"
            " after the length",
            path=str(path),
        )
    try:
        header = json.loads(data[8 : 8 + size])
        text = header.get("__metadata__", {}).get(META_KEY)
    except (ValueError, AttributeError) as exc:
        raise ModelError(
            f"{path} has no readable safetensors header: {exc}", path=str(path)
        ) from exc
    if text is None:
        raise ModelError(
            f"{path} holds weights but no architecture (no {META_KEY!r} entry in its"
            " safetensors metadata), so lockgate cannot rebuild the module",
            path=str(path),
            hint="train the model with lockgate (trainer='torch_mlp' or"
            " 'pytorch:pkg.module:build'), whose model.safetensors carries it",
        )
    try:
        architecture = json.loads(text)
        _check_architecture(architecture)
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelError(f"{path}: its architecture is not valid: {exc}", path=str(path)) from exc
    return dict(architecture)


def _check_architecture(arch: Any) -> None:
    if not isinstance(arch, dict) or arch.get("format") != FORMAT:
        raise ValueError(f"expected format {FORMAT!r}")
    if arch["task"] not in ("classification", "regression"):
        raise ValueError(f"task {arch['task']!r}")
    for key in ("n_features", "n_outputs"):
        if not isinstance(arch[key], int) or arch[key] < 1:
            raise ValueError(f"{key} {arch[key]!r}")
    classes = arch["classes"]
    if arch["task"] == "classification" and (
        not isinstance(classes, list) or len(classes) != arch["n_outputs"]
    ):
        raise ValueError(f"classes {classes!r} for {arch['n_outputs']} outputs")
    module = arch["module"]
    if module["kind"] == "mlp":
        _check_mlp(module)
    elif module["kind"] == "function":
        if not isinstance(module["function"], str) or not isinstance(module["params"], dict):
            raise ValueError("a function module needs 'function' and 'params'")
    else:
        raise ValueError(f"module kind {module['kind']!r}")


FRAMEWORK = PyTorchFramework()
