"""The torch side of the PyTorch framework (imported only when a PyTorch model is trained
or loaded): building a module from its architecture, the one training loop, and the
safetensors bytes.

Determinism: the module's initial weights and dropout draw from torch's global generator,
seeded inside ``torch.random.fork_rng`` (restored afterwards); batches are shuffled by a
generator of their own; the fit runs on one thread (a fixed reduction order). Both the
generator and the thread count are process-wide, so fits in one process take turns (a
lock): the step runner's parallel steps cannot interleave their draws. The operations used
(linear layers, activations, dropout, AdamW) are deterministic on the CPU, so one seed gives
the same bytes.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lockgate.errors import ConfigError, ModelError
from lockgate.training.frameworks.base import Report
from lockgate.training.frameworks.pytorch import (
    FORMAT,
    META_KEY,
    TorchModel,
    TorchTrainer,
    import_builder,
    import_torch,
)

torch = import_torch()
_ACTIVATIONS = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "gelu": torch.nn.GELU}


def build_module(architecture: dict[str, Any], *, for_what: str) -> Any:
    """A fresh module for ``architecture`` (its weights drawn from torch's generator)."""
    spec = architecture["module"]
    n_in, n_out = architecture["n_features"], architecture["n_outputs"]
    if spec["kind"] == "mlp":
        layers: list[Any] = []
        width = n_in
        for hidden in spec["hidden_layers"]:
            layers += [torch.nn.Linear(width, hidden), _ACTIVATIONS[spec["activation"]]()]
            if spec["dropout"]:
                layers.append(torch.nn.Dropout(spec["dropout"]))
            width = hidden
        layers.append(torch.nn.Linear(width, n_out))
        return torch.nn.Sequential(*layers)
    build = import_builder(spec["function"], for_what=for_what)
    try:
        module = build(n_in, n_out, dict(spec["params"]))
    except Exception as exc:  # noqa: BLE001 - the user's function may fail any way
        raise ModelError(
            f"{for_what}: {spec['function']}({n_in}, {n_out}, {spec['params']!r}) failed:"
            f" {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(module, torch.nn.Module):
        raise ModelError(
            f"{for_what}: {spec['function']} returned {type(module).__name__}, not a"
            " torch.nn.Module",
            hint="return the module: build(n_features, n_outputs, params) -> nn.Module",
        )
    return module.float()


_FIT_LOCK = threading.Lock()


@contextlib.contextmanager
def _seeded_on_one_thread(seed: int) -> Iterator[None]:
    """Torch's global generator seeded and one intra-op thread, for this fit alone."""
    with _FIT_LOCK, torch.random.fork_rng(devices=[]):
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def fit(
    trainer: TorchTrainer,
    X: np.ndarray,
    y: np.ndarray,
    *,
    eval_set: tuple[np.ndarray, np.ndarray] | None,
    sample_weight: np.ndarray | None,
    base_model: TorchModel | None,
    report: Report | None,
) -> TorchModel:
    architecture = _architecture(trainer, X, y, base_model)
    targets = _targets(architecture, y)
    eval_targets = None if eval_set is None else _targets(architecture, eval_set[1])
    with _seeded_on_one_thread(trainer.seed):
        module = build_module(architecture, for_what=f"trainer '{trainer.label}'")
        if base_model is not None:
            _copy_weights(base_model, module)
        model = TorchModel(architecture, module)
        _loop(model, trainer, X, targets, eval_set, eval_targets, sample_weight, report)
    module.to("cpu").eval()
    return model


def _architecture(
    trainer: TorchTrainer, X: np.ndarray, y: np.ndarray, base: TorchModel | None
) -> dict[str, Any]:
    """What the module will be: widths from the data, classes and target scaling from the
    data or, warm-starting, from the base (which must be the same architecture)."""
    classes: list[int] | None = None
    target: dict[str, float] | None = None
    if trainer.task == "classification":
        classes = [int(c) for c in np.unique(y)]
        if len(classes) < 2:
            raise ConfigError(f"trainer '{trainer.label}': the train split has one class only")
    else:
        std = float(np.std(y))
        target = {"mean": float(np.mean(y)), "std": std if std > 0 else 1.0}
    architecture = {
        "format": FORMAT,
        "task": trainer.task,
        "n_features": int(X.shape[1]),
        "n_outputs": len(classes) if classes is not None else 1,
        "classes": classes,
        "target": target,
        "dtype": "float32",
        "module": trainer.module,
    }
    if base is None:
        return architecture
    theirs = base.architecture
    if trainer.task == "classification":
        unseen = sorted(set(classes or ()) - set(theirs.get("classes") or ()))
        if not unseen:
            architecture.update(classes=theirs["classes"], n_outputs=theirs["n_outputs"])
    else:
        architecture["target"] = theirs["target"]
    differences = _differences(theirs, architecture)
    if differences:
        raise ConfigError(
            f"trainer '{trainer.label}': the base model's architecture differs from this"
            f" training's: {'; '.join(differences)}",
            hint="warm start continues the same architecture: use the base model's"
            " parameters, or leave base_model out to train from scratch",
        )
    return architecture


def _differences(base: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    out = []
    for key in ("task", "n_features", "n_outputs", "classes"):
        if base.get(key) != ours.get(key):
            out.append(f"{key} {base.get(key)!r} (base) against {ours.get(key)!r}")
    theirs_module, our_module = base["module"], ours["module"]
    for key in sorted(set(theirs_module) | set(our_module)):
        if key == "dropout":  # a training regulariser: the weights fit either way
            continue
        if theirs_module.get(key) != our_module.get(key):
            out.append(f"{key} {theirs_module.get(key)!r} (base) against {our_module.get(key)!r}")
    return out


def _copy_weights(base: TorchModel, module: Any) -> None:
    theirs = base.module.state_dict()
    ours = module.state_dict()
    shapes = {k: tuple(v.shape) for k, v in theirs.items()}
    wanted = {k: tuple(v.shape) for k, v in ours.items()}
    if shapes != wanted:
        raise ConfigError(
            f"the base model's weights {shapes} do not fit this module's {wanted}",
            hint="warm start continues the same architecture; leave base_model out",
        )
    module.load_state_dict({k: v.detach().clone() for k, v in theirs.items()})


def _targets(architecture: dict[str, Any], y: np.ndarray) -> Any:
    if architecture["task"] == "classification":
        classes = np.asarray(architecture["classes"])
        positions = np.searchsorted(classes, y)
        positions = np.clip(positions, 0, len(classes) - 1)
        known = classes[positions] == y
        # an eval-split class the model has no output for cannot count; -100 is ignored
        return torch.as_tensor(np.where(known, positions, -100), dtype=torch.long)
    scale = architecture["target"]
    scaled = (np.asarray(y, dtype=np.float64) - scale["mean"]) / scale["std"]
    return torch.as_tensor(scaled, dtype=torch.float32)


def _losses(task: str, output: Any, target: Any) -> Any:
    if task == "classification":
        return torch.nn.functional.cross_entropy(
            output, target, reduction="none", ignore_index=-100
        )
    return (output.reshape(-1) - target) ** 2


def _loop(
    model: TorchModel,
    trainer: TorchTrainer,
    X: np.ndarray,
    targets: Any,
    eval_set: tuple[np.ndarray, np.ndarray] | None,
    eval_targets: Any,
    sample_weight: np.ndarray | None,
    report: Report | None,
) -> None:
    loop, task, device = trainer.loop, trainer.task, trainer.device
    module = model.module.to(device)
    features = torch.as_tensor(np.asarray(X, dtype=np.float32), device=device)
    targets = targets.to(device)
    weights = None
    if sample_weight is not None:
        w = np.asarray(sample_weight, dtype=np.float64)
        weights = torch.as_tensor(w / w.mean(), dtype=torch.float32, device=device)
    watched = None
    if eval_set is not None:
        watched = (
            torch.as_tensor(np.asarray(eval_set[0], dtype=np.float32), device=device),
            eval_targets.to(device),
        )
    optimizer = torch.optim.AdamW(
        module.parameters(), lr=loop["learning_rate"], weight_decay=loop["weight_decay"]
    )
    shuffle = torch.Generator().manual_seed(trainer.seed)
    patience = loop["early_stopping_rounds"]
    best, best_epoch, best_state = math.inf, -1, None
    n, size = len(features), loop["batch_size"]
    for epoch in range(loop["epochs"]):
        module.train()
        order = torch.randperm(n, generator=shuffle).to(device)
        for start in range(0, n, size):
            rows = order[start : start + size]
            losses = _losses(task, module(features[rows]), targets[rows])
            if weights is not None:
                loss = (losses * weights[rows]).sum() / weights[rows].sum()
            else:
                loss = losses.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if watched is None:
            continue
        value = _eval_loss(model, module, watched)
        model.eval_losses_.append(value)
        if report is not None:
            report(epoch, value)
        if patience is None:
            continue
        if value < best:
            best, best_epoch = value, epoch
            best_state = copy.deepcopy(module.state_dict())
        elif epoch - best_epoch >= patience:
            break
    if patience is not None and best_state is not None:
        module.load_state_dict(best_state)
        model.best_iteration_ = best_epoch + 1


def _eval_loss(model: TorchModel, module: Any, watched: tuple[Any, Any]) -> float:
    """The mean loss on the eval split: cross-entropy, or MSE in the label's own units."""
    module.eval()
    with torch.inference_mode():
        losses = _losses(model.task, module(watched[0]), watched[1])
        if model.task == "classification":
            losses = losses[watched[1] != -100]
        value = float(losses.mean()) if losses.numel() else 0.0
    if model.task == "regression":
        value *= model.architecture["target"]["std"] ** 2
    return value


def to_bytes(model: TorchModel) -> bytes:
    """The safetensors file: the CPU float32 weights, the architecture in its metadata."""
    from safetensors.torch import save

    tensors = {
        name: tensor.detach().to("cpu").contiguous().clone()
        for name, tensor in model.module.state_dict().items()
    }
    text = json.dumps(model.architecture, sort_keys=True, allow_nan=False)
    return bytes(save(tensors, metadata={META_KEY: text}))


def from_bytes(data: bytes, architecture: dict[str, Any], path: Path) -> TorchModel:
    """The module rebuilt from ``architecture`` with the weights in ``data`` (read by
    ``safetensors.torch.load``, which parses tensors and never unpickles)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        tensors = load(data)
    except (SafetensorError, ValueError) as exc:
        raise ModelError(
            f"{path} holds no readable safetensors weights: {exc}", path=str(path)
        ) from exc
    module = build_module(architecture, for_what=str(path))
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise ModelError(
            f"{path}: the weights do not fit the architecture it declares: {exc}", path=str(path)
        ) from exc
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return TorchModel(architecture, module)


def _forward(module: Any, X: np.ndarray) -> np.ndarray:
    features = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    with torch.inference_mode():
        return np.asarray(module(features).numpy(), dtype=np.float64)


def proba(module: Any, X: np.ndarray) -> np.ndarray:
    """Softmax of the logits, computed in float64 (rows sum to 1 to the last bit)."""
    logits = _forward(module, X)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True), dtype=np.float64)


def values(module: Any, X: np.ndarray, target: dict[str, float] | None) -> np.ndarray:
    out = _forward(module, X).reshape(len(X), -1)[:, 0]
    if target is not None:
        out = out * target["std"] + target["mean"]
    return np.asarray(out, dtype=np.float64)
