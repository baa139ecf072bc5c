"""The transform library's steps: how each one checks its input kinds and maps columns.

One code path applies a step in training, evaluation and serving (``run_steps``); fitting
(``transform_fit``) runs the same path with the analyzers' results filled in as they come.
A column's value is a ``Value``: numbers and ids as float64 NumPy arrays (NaN missing), text
as an Arrow large_string array (null missing), times as Arrow ``timestamp[us]`` (UTC), and
a one-hot block as a 2-D float64 array with a name per column. See ``lockgate.transforms``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockgate.errors import ConfigError, DataError
from lockgate.training.stable_hash import hash_buckets
from lockgate.transforms import DATE_PARTS, TransformSpec

__all__ = ["OOV", "Value", "output_kinds", "raw_value", "run_steps", "step_outputs"]

OOV = "<other>"
#: Raw input kinds (as the server sees them: numeric is FP64, the rest BYTES).
RAW_KINDS = ("numeric", "string", "bool", "timestamp")
_NUMERIC_IN = ("number", "ids")
_TEXT_IN = ("text", "number", "ids")


@dataclass
class Value:
    """One working column: ``kind`` is number, ids, text, time or block."""

    kind: str
    data: Any
    names: tuple[str, ...] = ()  # ids: a label per id ("=Biscoe", "__hash3"); block: columns


def describe(spec: Mapping[str, Any]) -> str:
    """How a step is named in messages: ``log('income')``."""
    if spec["op"] == "row_function":
        return f"row_function({spec['function']})"
    if "inputs" in spec:
        return f"{spec['op']}({list(spec['inputs'])})"
    return f"{spec['op']}('{spec['input']}')"


def step_inputs(spec: Mapping[str, Any]) -> list[str]:
    return list(spec["inputs"]) if "inputs" in spec else [spec["input"]]


def step_outputs(spec: Mapping[str, Any]) -> list[str]:
    """The columns a step writes."""
    op = spec["op"]
    if op == "row_function":
        return list(spec["outputs"])
    if op == "date_parts":
        return [f"{spec['input']}__{part}" for part in spec["parts"]]
    if op == "impute" and spec["indicator"]:
        return [spec["output"], f"{spec['output']}__missing"]
    return [spec["output"]]


# ---- kinds ----------------------------------------------------------------------------
_KIND_WORDS = {
    "number": "a number",
    "ids": "ids",
    "text": "text",
    "time": "a timestamp",
    "block": "one-hot columns",
}


def _expect(spec: Mapping[str, Any], name: str, kind: str, allowed: tuple[str, ...]) -> None:
    if kind == "block":
        raise ConfigError(
            f"{describe(spec)}: column '{name}' is already one-hot encoded by an earlier"
            " one_hot(); put this step before it"
        )
    if kind not in allowed:
        wanted = " or ".join(_KIND_WORDS[k] for k in allowed)
        raise DataError(f"{describe(spec)} needs {wanted} column; '{name}' is {_KIND_WORDS[kind]}")


def output_kinds(spec: TransformSpec, kinds: Mapping[str, str]) -> dict[str, str]:
    """The kinds of a step's outputs, given its inputs' kinds; wrong kinds are refused."""
    op = spec.op
    names = step_inputs(spec)
    got = [kinds[n] for n in names]
    outs = step_outputs(spec)
    if op in ("zscore", "min_max", "log", "clip"):
        _expect(spec, names[0], got[0], _NUMERIC_IN)
        return {outs[0]: "number"}
    if op == "bucketize":
        _expect(spec, names[0], got[0], _NUMERIC_IN)
        return {outs[0]: "ids"}
    if op in ("vocabulary", "hashing", "cross"):
        for name, kind in zip(names, got, strict=True):
            _expect(spec, name, kind, _TEXT_IN)
        return {outs[0]: "ids"}
    if op == "one_hot":
        _expect(spec, names[0], got[0], _TEXT_IN)
        return {outs[0]: "block"}
    if op == "impute":
        _expect(spec, names[0], got[0], ("number", "ids", "text"))
        text = got[0] == "text"
        if text and spec["strategy"] in ("mean", "median"):
            raise DataError(
                f"{describe(spec)}: strategy '{spec['strategy']}' needs numbers; '{names[0]}'"
                " is text (use 'most_frequent' or 'constant')"
            )
        value = spec["value"]
        if spec["strategy"] == "constant" and text != isinstance(value, str):
            raise DataError(
                f"{describe(spec)}: value={value!r} does not fit column '{names[0]}', which is"
                f" {_KIND_WORDS[got[0]]}"
            )
        out = {outs[0]: "text" if text else "number"}
        return out | ({outs[1]: "number"} if spec["indicator"] else {})
    if op == "date_parts":
        _expect(spec, names[0], got[0], ("time",))
        return dict.fromkeys(outs, "number")
    if op == "row_function":
        for name, kind in zip(names, got, strict=True):
            _expect(spec, name, kind, ("number", "ids", "text", "time"))
        return dict.fromkeys(outs, "number")
    raise ConfigError(f"unknown transform {op!r}")


#: Ops whose fitted parameters come from the train split.
def needs_fit(spec: Mapping[str, Any], kinds: Mapping[str, str]) -> bool:
    op = spec["op"]
    if op in ("zscore", "min_max", "bucketize", "vocabulary"):
        return True
    if op == "one_hot":
        return kinds[spec["input"]] != "ids"
    if op == "impute":
        return bool(spec["strategy"] != "constant")
    return False


# ---- raw columns ----------------------------------------------------------------------
def raw_kind(arrow_type: pa.DataType) -> str | None:
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if (
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_decimal(arrow_type)
    ):
        return "numeric"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return "timestamp"
    return None


def _arrow(values: Any) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    elif isinstance(values, np.ndarray):
        values = pa.array(values, from_pandas=True)
    if pa.types.is_dictionary(values.type):
        values = pc.cast(values, values.type.value_type)
    return values


def _sample(values: pa.Array) -> Any:
    present = values.drop_null()
    return present[0].as_py() if len(present) else None


def raw_value(name: str, kind: str, values: Any) -> Value:
    """A raw input column as a Value; a request's float64 array is taken as it is."""
    if kind == "numeric":
        if isinstance(values, np.ndarray) and values.dtype == np.float64:
            return Value("number", values)
        arr = _arrow(values)
        if not (pa.types.is_null(arr.type) or raw_kind(arr.type) == "numeric"):
            raise DataError(
                f"column '{name}' expected numeric values (int or float), got {arr.type}"
                f" (e.g. {_sample(arr)!r})"
            )
        out = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        return Value("number", np.asarray(out, dtype=np.float64))
    arr = _arrow(values)
    if kind == "timestamp":
        return Value("time", _to_time(name, arr))
    if pa.types.is_null(arr.type) or pa.types.is_boolean(arr.type):
        return Value("text", pc.cast(arr, pa.large_string()))
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        raise DataError(f"column '{name}' expected {kind} values, got {arr.type}")
    return Value("text", pc.cast(arr, pa.large_string()))


def _to_time(name: str, arr: pa.Array) -> pa.Array:
    """timestamp[us] in UTC wall time; text is parsed as ISO 8601 (naive means UTC)."""
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.timestamp("us"))
    if pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
        micros = pc.cast(
            pc.cast(arr, pa.timestamp("us", getattr(arr.type, "tz", None))), pa.int64()
        )
        return pc.cast(micros, pa.timestamp("us"))
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        for target in (pa.timestamp("us"), pa.timestamp("us", "UTC")):
            try:
                parsed = pc.cast(arr, target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
            return pc.cast(pc.cast(parsed, pa.int64()), pa.timestamp("us"))
        raise DataError(
            f"column '{name}' expected timestamps (ISO 8601 such as 2024-05-01T12:00:00),"
            f" got values such as {_sample(arr)!r}"
        )
    raise DataError(f"column '{name}' expected timestamps, got {arr.type}")


# ---- conversions ----------------------------------------------------------------------
def as_text(value: Value) -> pa.Array:
    """Text of a text, number or ids column: integral numbers as "3", others as "1.5"."""
    if value.kind == "text":
        return value.data
    x = value.data
    integral = np.isfinite(x) & (np.floor(x) == x) & (np.abs(x) < 2.0**62)
    ints = pc.cast(pa.array(np.where(integral, x, 0).astype(np.int64)), pa.large_string())
    floats = pc.cast(pa.array(x, from_pandas=True), pa.large_string())
    return pc.if_else(pa.array(integral), ints, floats)


def _missing_to_nan(x: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(x), x, np.nan)


def _one_hot(ids: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((len(ids), width))
    present = ~np.isnan(ids)
    out[np.flatnonzero(present), ids[present].astype(np.int64)] = 1.0
    return out


def vocabulary_ids(text: pa.Array, vocab: list[str], oov_buckets: int) -> np.ndarray:
    """Ids of ``vocab`` values; anything else ``len(vocab) + hash % oov_buckets``."""
    k = len(vocab)
    if k:
        found = pc.index_in(text, value_set=pa.array(vocab, pa.large_string()))
    else:
        found = pa.nulls(len(text), pa.int32())
    ids = found.to_numpy(zero_copy_only=False)
    ids = np.asarray(ids if found.null_count == 0 else pc.fill_null(found, -1).to_numpy(), np.int64)
    unseen = ids < 0
    if unseen.any():
        extra = (
            np.zeros(len(ids), np.int64) if oov_buckets == 1 else hash_buckets(text, oov_buckets)
        )
        ids = np.where(unseen, k + extra, ids)
    return ids.astype(np.float64)


def vocabulary_labels(vocab: list[str], oov_buckets: int) -> tuple[str, ...]:
    oov = [OOV] if oov_buckets == 1 else [f"<oov{i}>" for i in range(oov_buckets)]
    return tuple(f"={v}" for v in [*vocab, *oov])


# ---- applying -------------------------------------------------------------------------
#: ``fn(spec, fitted, inputs, functions, fitting) -> {output: Value}``
Apply = Callable[
    [Mapping[str, Any], Mapping[str, Any], list[Value], Mapping[str, Any], bool],
    dict[str, Value],
]


def _numeric(
    spec: Mapping[str, Any], fitted: Mapping[str, Any], ins: list[Value], *_: Any
) -> dict[str, Value]:
    x = ins[0].data
    op = spec["op"]
    if op == "zscore":
        out = (np.where(np.isnan(x), fitted["mean"], x) - fitted["mean"]) / fitted["std"]
    elif op == "min_max":
        span = fitted["max"] - fitted["min"]
        out = (x - fitted["min"]) / (span if span > 0 else 1.0)
    else:  # clip
        lo = -np.inf if spec["lower"] is None else spec["lower"]
        hi = np.inf if spec["upper"] is None else spec["upper"]
        out = np.clip(x, lo, hi)
    return {spec["output"]: Value("number", out)}


def _log(
    spec: Mapping[str, Any], fitted: Mapping[str, Any], ins: list[Value], _f: Any, fitting: bool
) -> dict[str, Value]:
    x = ins[0].data
    negative = x < 0
    if fitting and negative.any():
        raise DataError(
            f"{describe(spec)}: column '{spec['input']}' has {int(negative.sum())} negative"
            f" value(s) in the train split (e.g. {float(x[negative][0])}); log1p needs x >= 0",
            hint=f"put clip('{spec['input']}', lower=0) before it, or shift the column",
        )
    with np.errstate(invalid="ignore"):
        out = np.log1p(np.where(negative, np.nan, x))
    return {spec["output"]: Value("number", out)}


def _bucketize(
    spec: Mapping[str, Any], fitted: Mapping[str, Any], ins: list[Value], *_: Any
) -> dict[str, Value]:
    x = ins[0].data
    edges = np.asarray(fitted["edges"], dtype=np.float64)
    ids = np.searchsorted(edges, x, side="right").astype(np.float64)
    ids[np.isnan(x)] = np.nan
    labels = tuple(f"__bucket{i}" for i in range(len(edges) + 1))
    return {spec["output"]: Value("ids", ids, labels)}


def _vocabulary(
    spec: Mapping[str, Any], fitted: Mapping[str, Any], ins: list[Value], *_: Any
) -> dict[str, Value]:
    vocab, oov = list(fitted["vocabulary"]), spec["oov_buckets"]
    ids = vocabulary_ids(as_text(ins[0]), vocab, oov)
    return {spec["output"]: Value("ids", ids, vocabulary_labels(vocab, oov))}


def _hashing(
    spec: Mapping[str, Any], fitted: Mapping[str, Any], ins: list[Value], *_: Any
) -> dict[str, Value]:
    if spec["op"] == "cross":
        parts = [pc.fill_null(as_text(v), "") for v in ins]
        text = pc.binary_join_element_wise(*parts, pa.scalar("\x1f", pa.large_string()))
    else:
        text = as_text(ins[0])
    ids = hash_buckets(text, spec["buckets"]).astype(np.float64)
    labels = tuple(f"__hash{i}" for i in range(spec["buckets"]))
    return {spec["output"]: Value("ids", ids, labels)}


def _one_hot_step(
    spec: Mapping[str, Any], fitted: Mapping[str, Any], ins: list[Value], *_: Any
) -> dict[str, Value]:
    value, out = ins[0], spec["output"]
    if value.kind == "ids":
        ids, labels = value.data, value.names
    else:
        vocab = list(fitted["vocabulary"])
        ids, labels = vocabulary_ids(as_text(value), vocab, 1), vocabulary_labels(vocab, 1)
    names = tuple(f"{out}{label}" for label in labels)
    return {out: Value("block", _one_hot(ids, len(labels)), names)}


def _impute(
    spec: Mapping[str, Any], fitted: Mapping[str, Any], ins: list[Value], *_: Any
) -> dict[str, Value]:
    value = ins[0]
    fill = spec["value"] if spec["strategy"] == "constant" else fitted["value"]
    if value.kind == "text":
        missing = np.asarray(value.data.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        filled = Value("text", pc.fill_null(value.data, pa.scalar(str(fill), pa.large_string())))
    else:
        missing = np.isnan(value.data)
        filled = Value("number", np.where(missing, float(fill), value.data))
    outs = step_outputs(spec)
    result = {outs[0]: filled}
    if spec["indicator"]:
        result[outs[1]] = Value("number", missing.astype(np.float64))
    return result


_PARTS: dict[str, Callable[[pa.Array], pa.Array]] = {
    "year": pc.year,
    "quarter": pc.quarter,
    "month": pc.month,
    "day": pc.day,
    "dayofweek": pc.day_of_week,
    "dayofyear": pc.day_of_year,
    "hour": pc.hour,
    "minute": pc.minute,
    "second": pc.second,
}
assert set(_PARTS) == set(DATE_PARTS)


def _date_parts(
    spec: Mapping[str, Any], fitted: Mapping[str, Any], ins: list[Value], *_: Any
) -> dict[str, Value]:
    times = ins[0].data
    out = {}
    for part, name in zip(spec["parts"], step_outputs(spec), strict=True):
        values = pc.cast(_PARTS[part](times), pa.float64()).to_numpy(zero_copy_only=False)
        out[name] = Value("number", np.asarray(values, dtype=np.float64))
    return out


def _row_function(
    spec: Mapping[str, Any],
    fitted: Mapping[str, Any],
    ins: list[Value],
    functions: Mapping[str, Any],
    _fitting: bool,
) -> dict[str, Value]:
    outs = list(spec["outputs"])
    n = len(ins[0].data)
    if n == 0:  # names only: the function is not asked about no rows
        return {name: Value("number", np.zeros(0)) for name in outs}
    arrays: dict[str, np.ndarray] = {}
    for name, value in zip(spec["inputs"], ins, strict=True):
        if value.kind in ("text", "time"):
            arrays[name] = value.data.to_numpy(zero_copy_only=False)
        else:
            arrays[name] = value.data
    where = describe(spec)
    try:
        result = functions[spec["function"]](arrays)
    except Exception as exc:  # the user's code: say whose it was
        raise DataError(f"{where} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(result, Mapping):
        if len(outs) != 1:
            raise DataError(
                f"{where} must return a dict with the outputs {outs}; got {type(result).__name__}"
            )
        result = {outs[0]: result}
    missing = [o for o in outs if o not in result]
    if missing:
        raise DataError(
            f"{where} did not return the output(s) {missing}; it returned {list(result)}"
        )
    out = {}
    for name in outs:
        try:
            values = np.asarray(result[name], dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{where}: output '{name}' is not numbers: {exc}") from exc
        if len(values) != n:
            raise DataError(f"{where}: output '{name}' has {len(values)} values for {n} rows")
        out[name] = Value("number", _missing_to_nan(values))
    return out


APPLY: dict[str, Apply] = {
    "zscore": _numeric,
    "min_max": _numeric,
    "clip": _numeric,
    "log": _log,
    "bucketize": _bucketize,
    "vocabulary": _vocabulary,
    "hashing": _hashing,
    "cross": _hashing,
    "one_hot": _one_hot_step,
    "impute": _impute,
    "date_parts": _date_parts,
    "row_function": _row_function,
}


def apply_step(
    step: Mapping[str, Any],
    env: dict[str, Value],
    functions: Mapping[str, Any],
    *,
    fitting: bool = False,
) -> None:
    """Run one fitted step over ``env`` (its outputs replace or join the columns)."""
    ins = [env[name] for name in step_inputs(step)]
    env.update(APPLY[step["op"]](step, step.get("fitted", {}), ins, functions, fitting))


def run_steps(
    steps: tuple[Mapping[str, Any], ...],
    env: dict[str, Value],
    emitted: tuple[str, ...],
    functions: Mapping[str, Any],
) -> tuple[np.ndarray, list[str]]:
    """Apply every step, then the ``emitted`` columns as one float64 matrix and its names."""
    for step in steps:
        apply_step(step, env, functions)
    n = len(next(iter(env.values())).data) if env else 0
    parts: list[np.ndarray] = []
    names: list[str] = []
    for name in emitted:
        value = env[name]
        if value.kind == "block":
            parts.append(value.data)
            names.extend(value.names)
        else:
            parts.append(np.nan_to_num(value.data, nan=0.0, posinf=0.0, neginf=0.0).reshape(-1, 1))
            names.append(name)
    if not parts:
        return np.empty((n, 0)), names
    return np.hstack(parts), names
