"""XGBoost's model files checked before XGBoost reads them.

XGBoost trusts the trees it loads: a child index, a split feature or a category segment
out of range crashes the process (a segfault) when the model is loaded or asked. These
checks read the JSON (or UBJ, the binary JSON XGBoost writes by default) as data and
refuse, with what and where, a tree whose arrays do not match its ``num_nodes``, whose
children do not form one tree, or whose splits name a feature outside ``num_feature``.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from lockgate.errors import ModelError


def check_xgboost_model(data: bytes, where: str) -> None:
    """Raise ModelError naming ``where`` unless ``data`` holds well-formed trees."""
    model = _decode(data, where)
    try:
        learner = model["learner"]
        width = int(learner["learner_model_param"]["num_feature"])
        booster = learner["gradient_booster"]
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(where, f"it lacks the learner's description ({exc})") from exc
    if booster.get("name") == "dart":
        booster = booster.get("gbtree", {})
    trees = booster.get("model", {}).get("trees", []) if booster.get("name") != "gblinear" else []
    if not isinstance(trees, list):
        raise _bad(where, "its trees are not a list")
    for index, tree in enumerate(trees):
        _check_tree(tree, width, where, f"tree {index}")


def _check_tree(tree: Any, width: int, where: str, name: str) -> None:
    try:
        nodes = int(tree["tree_param"]["num_nodes"])
        left = np.asarray(tree["left_children"], dtype=np.int64)
        right = np.asarray(tree["right_children"], dtype=np.int64)
        features = np.asarray(tree["split_indices"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(where, f"{name} is incomplete ({exc})") from exc
    if nodes < 1:
        raise _bad(where, f"{name} has num_nodes={nodes}")
    for key in (
        "left_children",
        "right_children",
        "split_indices",
        "split_conditions",
        "default_left",
        "parents",
    ):
        got = len(tree.get(key, ()))
        if got != nodes:
            raise _bad(where, f"{name} has {got} {key} value(s), expected {nodes}")
    leaf = left == -1
    if np.any(leaf != (right == -1)):
        raise _bad(where, f"{name} has a node with one child")
    children = np.concatenate([left[~leaf], right[~leaf]])
    expected = np.arange(1, nodes)
    if children.size != expected.size or np.any(np.sort(children) != expected):
        raise _bad(where, f"{name}'s children do not form one tree of {nodes} nodes")
    inner = features[~leaf]
    if inner.size and (inner.min() < 0 or inner.max() >= width):
        raise _bad(where, f"{name} splits on a feature outside 0..{width - 1}")
    _check_categories(tree, nodes, where, name)


def _check_categories(tree: dict[str, Any], nodes: int, where: str, name: str) -> None:
    at = np.asarray(tree.get("categories_nodes", ()), dtype=np.int64)
    segments = np.asarray(tree.get("categories_segments", ()), dtype=np.int64)
    sizes = np.asarray(tree.get("categories_sizes", ()), dtype=np.int64)
    total = len(tree.get("categories", ()))
    if not (len(at) == len(segments) == len(sizes)):
        raise _bad(where, f"{name}'s categorical splits are inconsistent")
    if len(at) and (
        at.min() < 0
        or at.max() >= nodes
        or segments.min() < 0
        or sizes.min() < 0
        or (segments + sizes).max() > total
    ):
        raise _bad(where, f"{name}'s categorical splits point outside the tree or its categories")


def _decode(data: bytes, where: str) -> Any:
    if data.lstrip()[:1] == b"{" and data.lstrip()[1:2] not in (b"L", b"l", b"i", b"U", b"I"):
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _bad(where, f"it is not valid JSON ({exc})") from exc
    try:
        value, end = _Ubj(data).value(0)
    except (IndexError, KeyError, ValueError, struct.error, UnicodeDecodeError) as exc:
        raise _bad(where, f"it is not valid UBJ ({type(exc).__name__}: {exc})") from exc
    return value


class _Ubj:
    """A small reader of UBJSON (the draft XGBoost writes): numbers big-endian, typed
    arrays (``[$d#L<count>``) read at once with NumPy."""

    _NUMBERS = {
        b"i": ">i1",
        b"U": ">u1",
        b"I": ">i2",
        b"l": ">i4",
        b"L": ">i8",
        b"d": ">f4",
        b"D": ">f8",
    }

    def __init__(self, data: bytes) -> None:
        self.data = data

    def value(self, at: int, marker: bytes | None = None) -> tuple[Any, int]:
        if marker is None:
            marker, at = self.data[at : at + 1], at + 1
            while marker == b"N":  # no-op
                marker, at = self.data[at : at + 1], at + 1
        if marker in self._NUMBERS:
            dtype = np.dtype(self._NUMBERS[marker])
            end = at + dtype.itemsize
            if end > len(self.data):
                raise ValueError("truncated")
            return np.frombuffer(self.data, dtype, 1, at)[0].item(), end
        if marker in (b"T", b"F", b"Z"):
            return {b"T": True, b"F": False, b"Z": None}[marker], at
        if marker == b"C":
            return chr(self.data[at]), at + 1
        if marker in (b"S", b"H"):
            return self._string(at)
        if marker == b"[":
            return self._array(at)
        if marker == b"{":
            return self._object(at)
        raise ValueError(f"unknown marker {marker!r} at byte {at - 1}")

    def _count(self, at: int) -> tuple[int, int]:
        count, at = self.value(at)
        if not isinstance(count, int) or count < 0 or count > len(self.data):
            raise ValueError(f"bad count {count!r}")
        return count, at

    def _string(self, at: int) -> tuple[str, int]:
        size, at = self._count(at)
        if at + size > len(self.data):
            raise ValueError("truncated string")
        return self.data[at : at + size].decode("utf-8"), at + size

    def _container(self, at: int) -> tuple[bytes | None, int | None, int]:
        kind = None
        if self.data[at : at + 1] == b"$":
            kind, at = self.data[at + 1 : at + 2], at + 2
        count = None
        if self.data[at : at + 1] == b"#":
            count, at = self._count(at + 1)
        return kind, count, at

    def _array(self, at: int) -> tuple[list[Any], int]:
        kind, count, at = self._container(at)
        if kind in self._NUMBERS and count is not None:
            dtype = np.dtype(self._NUMBERS[kind])
            end = at + dtype.itemsize * count
            if end > len(self.data):
                raise ValueError("truncated array")
            return np.frombuffer(self.data, dtype, count, at).tolist(), end
        items: list[Any] = []
        while count is None or len(items) < count:
            if count is None and self.data[at : at + 1] == b"]":
                return items, at + 1
            item, at = self.value(at, kind)
            items.append(item)
        return items, at

    def _object(self, at: int) -> tuple[dict[str, Any], int]:
        kind, count, at = self._container(at)
        found: dict[str, Any] = {}
        while count is None or len(found) < count:
            if count is None and self.data[at : at + 1] == b"}":
                return found, at + 1
            key, at = self._string(at)
            found[key], at = self.value(at, kind)
        return found, at


def _bad(where: str, what: str) -> ModelError:
    return ModelError(f"{where} is not a readable XGBoost model: {what}", path=where)
