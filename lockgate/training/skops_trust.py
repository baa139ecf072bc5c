"""Which types a skops file may name, checked before skops rebuilds anything from it.

skops rebuilds a file's objects by calling what the file names (a class, a function, a
reduce constructor) with arguments from the file, so every name in it is code that runs.
Trust is given by exact name only, never by prefix:

- skops' own default set (scikit-learn's estimators, numpy dtypes and ufuncs, builtin
  containers): whatever ``skops.io.get_untrusted_types`` does not report;
- ``ALLOWED_TYPES``: the internals of the estimators lockgate's built-in trainers produce;
- the types a person trusted on purpose (``lockgate models import --trust TYPE``,
  ``train(trust=[...])``), recorded with the model and its registry version.

Names in ``NEVER_TRUSTED`` run code or touch the system; no trust admits them. The list is
a backstop for a careless ``--trust``, not the protection: that is the exact allowlist.

``ALLOWED_TYPES`` are tree internals whose node arrays scikit-learn indexes without bounds
checks (skops leaves them out of its defaults for that reason), so ``check_trees`` checks
every loaded tree's structure before the model answers anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from lockgate.errors import ConfigError, ModelError, UntrustedModelError

#: What lockgate's built-in trainers' models hold beyond skops' defaults, read from
#: ``skops.io.get_untrusted_types`` on each trainer's output (scikit-learn 1.9, skops 0.16);
#: a test re-checks it on every trainer, so an upgrade that needs more fails there.
ALLOWED_TYPES = frozenset(
    {
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",  # gradient_boosting
        "sklearn.tree._tree.Tree",  # random_forest
    }
)

_NEVER_TRUSTED_MODULES = (
    "_pickle",
    "code",
    "codeop",
    "ctypes",
    "importlib",
    "joblib",
    "marshal",
    "nt",
    "numpy.ctypeslib",
    "numpy.distutils",
    "numpy.f2py",
    "numpy.lib._npyio_impl",
    "numpy.lib.npyio",
    "numpy.testing",
    "os",
    "pdb",
    "pickle",
    "posix",
    "pty",
    "runpy",
    "scipy.io",
    "shutil",
    "sklearn.datasets",
    "sklearn.utils._testing",
    "socket",
    "subprocess",
    "sys",
    "torch",
    "webbrowser",
)
_NEVER_TRUSTED_NAMES = frozenset(
    [
        *(
            f"builtins.{name}"
            for name in (
                "__build_class__",
                "__import__",
                "breakpoint",
                "compile",
                "delattr",
                "eval",
                "exec",
                "exit",
                "getattr",
                "globals",
                "help",
                "input",
                "locals",
                "open",
                "quit",
                "setattr",
                "vars",
            )
        ),
        *(
            f"{module}.{name}"
            for module in ("operator", "_operator")
            for name in ("attrgetter", "call", "methodcaller")
        ),
        *(
            f"numpy.{name}"
            for name in ("fromfile", "genfromtxt", "load", "loadtxt", "memmap", "save", "savez")
        ),
    ]
)
_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


def never_trusted(name: str) -> bool:
    """Whether ``name`` runs code or touches the system, so that no trust admits it."""
    return name in _NEVER_TRUSTED_NAMES or name.startswith(
        tuple(f"{module}." for module in _NEVER_TRUSTED_MODULES)
    )


def check_trust(trust: Iterable[str] | None, *, option: str = "--trust") -> tuple[str, ...]:
    """The trusted type names, sorted and unique; a ConfigError for one that is not a dotted
    name or that nothing may trust."""
    names = sorted(set(trust or ()))
    bad = [name for name in names if not isinstance(name, str) or not _NAME.fullmatch(name)]
    if bad:
        raise ConfigError(
            f"{option} takes full type names as the refusal lists them"
            f" (module.Name, e.g. sklearn.neighbors._kd_tree.KDTree); got {bad}"
        )
    never = [name for name in names if never_trusted(name)]
    if never:
        raise ConfigError(
            f"{option} cannot trust {never}: they run code or touch the system when a model"
            " file is loaded, so lockgate never loads a file that names them"
        )
    return tuple(names)


def import_hint(types: list[str]) -> str:
    """How to trust ``types``: on import, or in the pipeline's train step."""
    flags = " ".join(f"--trust {name}" for name in types)
    return (
        "if you know what they are and trust the file's author, import it with: lockgate"
        f" models import FILE --name NAME ... {flags} (a pipeline's own model: train(...,"
        f" trust={types})); the trust is recorded with the version"
    )


def untrusted_types(data: bytes, path: Path) -> list[str]:
    """What skops reports beyond its default set, read without building anything."""
    import skops.io

    from lockgate.core.project_code import AST_LOCK

    try:
        with AST_LOCK:  # skops reads arrays through numpy's .npy header parser (ast)
            return list(skops.io.get_untrusted_types(data=data))
    except Exception as exc:  # noqa: BLE001 - any failure here means a corrupt file
        raise ModelError(f"{path} is not a readable skops file: {exc}", path=str(path)) from exc


def needed_trust(untrusted: Iterable[str]) -> list[str]:
    """The reported types that lockgate's allowlist does not cover."""
    return sorted(name for name in untrusted if name not in ALLOWED_TYPES)


Hint = Callable[[list[str]], str]


def refuse_untrusted(
    untrusted: Iterable[str], trusted: Collection[str], path: Path, *, hint: Hint
) -> None:
    """Raise UntrustedModelError when a reported type is neither allowed nor trusted, or
    is one that nothing may trust; ``hint`` says how to trust the refused types."""
    needed = needed_trust(untrusted)
    never = [name for name in needed if never_trusted(name)]
    refused = sorted({name for name in needed if name not in trusted} | set(never))
    if not refused:
        return
    message = (
        f"{path} holds types that are not trusted: {refused}; loading a file calls the types"
        " it names, so only scikit-learn's estimators and the internals of lockgate's own"
        " trainers load without your word"
    )
    if never:
        message += f"; {never} run code or touch the system, and no --trust admits them"
    message += "; nothing in it was run"
    raise UntrustedModelError(
        message,
        types=refused,
        path=str(path),
        hint=hint(refused)
        if not never
        else "this file can never be loaded: rebuild the model without those types",
    )


def load_skops(data: bytes, path: Path, *, trusted: Collection[str], hint: Hint) -> Any:
    """Build the object in a skops file whose bytes are ``data``, after every type it names
    passed ``refuse_untrusted``; then check its trees. skops gets exactly the reported
    names, each vetted, never ``trusted=True``."""
    import skops.io

    if isinstance(trusted, str) or not all(isinstance(name, str) for name in trusted):
        raise ModelError(f"the trusted types for {path} must be a list of names; got {trusted!r}")
    untrusted = untrusted_types(data, path)
    refuse_untrusted(untrusted, frozenset(trusted), path, hint=hint)
    from lockgate.core.project_code import AST_LOCK

    try:
        with AST_LOCK:  # skops reads arrays through numpy's .npy header parser (ast)
            model = skops.io.loads(data, trusted=sorted(untrusted))
    except Exception as exc:  # noqa: BLE001 - corrupt content past the type check
        raise ModelError(f"{path} could not be loaded by skops: {exc}", path=str(path)) from exc
    check_trees(model, path)
    return model


def _objects(root: Any) -> Iterator[Any]:
    """Every object reachable from ``root`` through attributes, containers and object
    arrays, once each."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, str | bytes | int | float | bool | type(None)):
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack.extend(obj.ravel().tolist())
        elif isinstance(getattr(obj, "__dict__", None), dict):
            stack.extend(vars(obj).values())


def check_trees(model: Any, path: Path) -> None:
    """Refuse tree internals whose indices point outside their arrays (a crafted file's way
    to make ``predict`` read or write out of bounds): children must come after their parent
    and inside the tree, features inside the input. Trees are checked through the estimator
    that owns them, since that estimator checks the input's width."""
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.tree._tree import Tree

    objects = list(_objects(model))
    owned: set[int] = set()
    for obj in objects:
        tree = vars(obj).get("tree_") if hasattr(obj, "__dict__") else None
        if isinstance(tree, Tree):
            _check_tree(tree, getattr(obj, "n_features_in_", None), path)
            owned.add(id(tree))
        predictors = vars(obj).get("_predictors") if hasattr(obj, "__dict__") else None
        if predictors is not None:
            for predictor in _check_predictors(obj, predictors, path):
                owned.add(id(predictor))
    loose = {
        type(obj).__name__
        for obj in objects
        if isinstance(obj, Tree | TreePredictor) and id(obj) not in owned
    }
    if loose:
        _malformed(path, f"{sorted(loose)} outside the estimator that uses them")


def _malformed(path: Path, what: str) -> NoReturn:
    raise ModelError(
        f"{path} holds a malformed tree ({what}); a crafted file does this to make predict"
        " read or write outside the model's memory, so it is not loaded",
        path=str(path),
        hint="re-train or re-export the model from its source",
    )


def _check_tree(tree: Any, n_features: Any, path: Path) -> None:
    state = tree.__getstate__()
    nodes = state["nodes"]
    n = len(nodes)
    if state["node_count"] != n or n == 0:
        _malformed(path, f"node_count {state['node_count']} for {n} nodes")
    if n_features is None or tree.n_features != n_features:
        _malformed(path, f"{tree.n_features} features for an estimator of {n_features}")
    left, right = nodes["left_child"], nodes["right_child"]
    leaf = (left == -1) & (right == -1)
    index = np.arange(n)
    inner = ~leaf
    if not (
        np.all((left[inner] > index[inner]) & (left[inner] < n))
        and np.all((right[inner] > index[inner]) & (right[inner] < n))
        and np.all((nodes["feature"][inner] >= 0) & (nodes["feature"][inner] < n_features))
    ):
        _malformed(path, "a child or feature index out of range")
    # decision_path sizes its buffer by max_depth: the deepest path may not exceed it
    depth = np.zeros(n, dtype=np.int64)
    parents = index[inner]
    for _ in range(min(int(tree.max_depth), n) + 1):
        before = depth.copy()
        np.maximum.at(depth, left[parents], depth[parents] + 1)
        np.maximum.at(depth, right[parents], depth[parents] + 1)
        if np.array_equal(before, depth):
            break
    if depth.max() > tree.max_depth:
        _malformed(path, f"a path deeper than its max_depth {tree.max_depth}")


def _check_predictors(owner: Any, predictors: Any, path: Path) -> Iterator[Any]:
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    width = getattr(owner, "n_features_in_", None)
    mapper = getattr(owner, "_bin_mapper", None)
    categorical = getattr(mapper, "is_categorical_", None)
    if not isinstance(width, int | np.integer) or mapper is None:
        _malformed(path, "gradient boosting predictors without their input description")
    n_features = int(width)
    is_cat = np.zeros(n_features, dtype=bool)
    if categorical is not None:
        is_cat = np.asarray(categorical).astype(bool)
        if is_cat.shape != (n_features,):
            _malformed(path, "a categorical mask of the wrong width")
        for f in np.flatnonzero(is_cat):
            known = np.asarray(mapper.bin_thresholds_[f], dtype=np.float64)
            if not np.all((known >= 0) & (known <= 255) & (known == np.round(known))):
                _malformed(path, f"categories of feature {f} outside 0..255")
    for predictor in (p for row in predictors for p in row):
        if not isinstance(predictor, TreePredictor):
            _malformed(path, f"a {type(predictor).__name__} among the predictors")
        nodes = predictor.nodes
        bitsets = (predictor.raw_left_cat_bitsets, predictor.binned_left_cat_bitsets)
        if (
            not isinstance(nodes, np.ndarray)
            or nodes.dtype != PREDICTOR_RECORD_DTYPE
            or nodes.ndim != 1
            or len(nodes) == 0
            or any(np.ndim(b) != 2 or np.shape(b)[1] != 8 for b in bitsets)
        ):
            _malformed(path, "a predictor's arrays have the wrong type or shape")
        n = len(nodes)
        index = np.arange(n)
        inner = nodes["is_leaf"] == 0
        left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
        feature = nodes["feature_idx"][inner]
        cat = inner & (nodes["is_categorical"] != 0)
        n_bitsets = min(len(b) for b in bitsets)
        if not (
            np.all((left[inner] > index[inner]) & (left[inner] < n))
            and np.all((right[inner] > index[inner]) & (right[inner] < n))
            and np.all((feature >= 0) & (feature < n_features))
            and np.all(nodes["bitset_idx"][cat] < n_bitsets)
            and np.all(is_cat[nodes["feature_idx"][cat]])
        ):
            _malformed(path, "a predictor's child, feature or category index out of range")
        yield predictor
