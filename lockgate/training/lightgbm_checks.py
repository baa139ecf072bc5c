"""LightGBM's text model checked before LightGBM parses it.

LightGBM's parser trusts the file: it cuts the trees out at the offsets ``tree_sizes``
declares and indexes its arrays by the children and features the trees name, so a
truncated or crafted file crashes the process (a segfault, not an exception). These
checks read the text as text and refuse, with what and where, anything LightGBM would not
read safely: the tree blocks where ``tree_sizes`` puts them, ``end of trees`` after them,
and in each tree array lengths that match ``num_leaves``, children that form one tree, and
features inside ``max_feature_idx``. What follows ``end of trees`` (feature importances,
the training parameters) is for people, not for predicting, and LightGBM's parser crashes
on it when it is cut short: the model is read without it.
"""

from __future__ import annotations

from lockgate.errors import ModelError


def readable_lightgbm_text(data: bytes, where: str) -> str:
    """The model text LightGBM may parse (header and trees); a ModelError naming ``where``
    unless ``data`` is a well-formed LightGBM model."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad(where, f"it is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    header_end = text.find("\nTree=")
    end = text.find("end of trees")
    if header_end < 0 or end < 0:
        raise _bad(where, "it has no trees or no 'end of trees' line (truncated?)")
    header = _fields(text[:header_end])
    max_feature = _int(header, "max_feature_idx", where, "the header")
    sizes = [_as_int(s, where, "tree_sizes") for s in header.get("tree_sizes", "").split()]
    position = header_end + 1
    blocks = []
    for index, size in enumerate(sizes):
        block = text[position : position + size]
        if size <= 0 or not block.startswith(f"Tree={index}\n") or position + size > end:
            raise _bad(where, f"tree {index} is not where tree_sizes puts it (truncated?)")
        blocks.append(block)
        position += size
    if not sizes:  # an old file without tree_sizes: split on the Tree= lines
        blocks = ["Tree=" + part for part in text[header_end + 6 : end].split("\nTree=")]
    if text[position:end].strip():
        raise _bad(where, "there is text between the last tree and 'end of trees'")
    for index, block in enumerate(blocks):
        _check_tree(_fields(block), max_feature, where, f"tree {index}")
    return text[: end + len("end of trees")] + "\n"


def _check_tree(tree: dict[str, str], max_feature: int, where: str, name: str) -> None:
    leaves = _int(tree, "num_leaves", where, name)
    if leaves < 1:
        raise _bad(where, f"{name} has num_leaves={leaves}")
    _lengths(tree, ("leaf_value",), leaves, where, name)
    if leaves == 1:
        return
    nodes = leaves - 1
    arrays = ("split_feature", "threshold", "decision_type", "left_child", "right_child")
    _lengths(tree, arrays, nodes, where, name)
    features = [_as_int(v, where, name) for v in tree["split_feature"].split()]
    if any(f < 0 or f > max_feature for f in features):
        raise _bad(where, f"{name} splits on a feature outside 0..{max_feature}")
    children = [
        _as_int(v, where, name) for key in ("left_child", "right_child") for v in tree[key].split()
    ]
    # every inner node but the root, and every leaf (~k = -k-1), is a child exactly once
    expected = sorted([*range(1, nodes), *(-k - 1 for k in range(leaves))])
    if sorted(children) != expected:
        raise _bad(where, f"{name}'s children do not form one tree of {leaves} leaves")
    categories = _int(tree, "num_cat", where, name) if "num_cat" in tree else 0
    if categories > 0:
        boundaries = [_as_int(v, where, name) for v in tree.get("cat_boundaries", "").split()]
        thresholds = tree.get("cat_threshold", "").split()
        if len(boundaries) != categories + 1 or boundaries[-1] != len(thresholds):
            raise _bad(where, f"{name}'s categorical splits do not match num_cat={categories}")


def _fields(block: str) -> dict[str, str]:
    found = {}
    for line in block.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key.strip()] = value.strip()
    return found


def _lengths(tree: dict[str, str], keys: tuple[str, ...], n: int, where: str, name: str) -> None:
    for key in keys:
        got = len(tree.get(key, "").split())
        if got != n:
            raise _bad(where, f"{name} has {got} {key} value(s), expected {n}")


def _int(fields: dict[str, str], key: str, where: str, name: str) -> int:
    if key not in fields:
        raise _bad(where, f"{name} has no {key}")
    return _as_int(fields[key], where, f"{name} ({key})")


def _as_int(value: str, where: str, name: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise _bad(where, f"{name}: {value[:40]!r} is not an integer") from exc


def _bad(where: str, what: str) -> ModelError:
    return ModelError(f"{where} is not a readable LightGBM model: {what}", path=where)
