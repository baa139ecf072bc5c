"""The transform library: TFX Transform's analyzers and mappers, without TensorFlow.

Each function returns a small, frozen, JSON-serialisable spec (a read-only ``dict``) for
``fit_transform(..., transforms=[...])``; the fitted result is ``transform.json``
(``format_version`` 2), applied by the same code in training, evaluation and serving.

The model is a list of steps run in order over named columns. A step reads its input
column(s) and writes its output column(s); ``output=`` defaults to the input's name, so
steps chain on one column by naming it again::

    transforms=[
        impute("income", strategy="median"),  # income, income__missing
        log("income"),                         # log1p
        zscore("income"),
        cross(["island", "sex"], buckets=16),  # ids island_x_sex (before island is one-hot)
        one_hot("island_x_sex"),               # island_x_sex__hash0 .. __hash15
        vocabulary("island", top_k=2),         # ids 0, 1 and 2 (<other>)
        one_hot("island"),                     # island=Biscoe, island=Dream, island=<other>
    ]

A step cannot read a column after ``one_hot`` encoded it: order the steps so that it comes
first (or give ``one_hot`` another ``output=``).

Kinds of column: numbers (NaN when missing), text (strings, bools as "true"/"false",
integral numbers as "3"), timestamps, and ids (integers from ``vocabulary``, ``hashing``,
``cross`` and ``bucketize``, each with a name per id). ``one_hot`` turns ids (or text or
numbers, whose vocabulary it fits) into one column per id.

The model's matrix holds, in the order first written, every column a step wrote (its last
value): a number as one column, ids as one column of ids (``one_hot`` them for indicator
columns), text as ``one_hot`` would encode it. Features no step reads keep the default
(numbers: mean-imputed and z-scored; text and bools: one-hot plus ``<other>``) and come
first. A raw column that a step reads is emitted only if a step writes it. Numbers still
missing (or infinite) at the end are emitted as 0.0: put ``impute`` first to choose; a
missing id is an all-zero row in ``one_hot``.

Fitting is on the train split only, streaming its record batches through the data
pipeline's accumulators (Moments, KLL/exact quantiles, value counts): one pass, plus one per
analyzer that reads another analyzer's output (``impute`` then ``zscore`` needs two).

* ``log`` is ``log1p``; a negative value in the train split is refused (clip it first), a
  negative value met later is treated as missing.
* ``hashing`` and ``cross`` use FNV-1a (64-bit) of the UTF-8 text: the same bucket on every
  machine and process; missing values hash as "".
* ``vocabulary`` sends unseen and missing values to ``oov_buckets`` extra ids (by hash).
* ``bucketize`` puts ``x`` in bucket ``i`` when ``edges[i-1] <= x < edges[i]``.
* ``row_function(fn, ...)`` is stored as ``module:qualname`` and a fingerprint of its
  source; a server that cannot import it, or imports a different version, refuses to load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from lockgate.errors import ConfigError

__all__ = [
    "DATE_PARTS",
    "IMPUTE_STRATEGIES",
    "TransformSpec",
    "bucketize",
    "clip",
    "cross",
    "date_parts",
    "hashing",
    "impute",
    "log",
    "min_max",
    "one_hot",
    "resolve_function",
    "row_function",
    "spec_from_dict",
    "vocabulary",
    "zscore",
]

IMPUTE_STRATEGIES = ("mean", "median", "most_frequent", "constant")
DATE_PARTS = (
    "year",
    "quarter",
    "month",
    "day",
    "dayofweek",
    "dayofyear",
    "hour",
    "minute",
    "second",
)


class TransformSpec(dict[str, Any]):
    """One step: a read-only dict, ``{"op": ..., "input": ..., "output": ..., ...}``."""

    def _frozen(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(f"a transform spec is frozen; build a new one ({self['op']}(...))")

    __setitem__ = __delitem__ = _frozen  # type: ignore[assignment]
    clear = pop = popitem = setdefault = update = _frozen  # type: ignore[assignment]
    __ior__ = _frozen  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(self),))

    def __hash__(self) -> int:  # type: ignore[override]
        import json

        return hash(json.dumps(self, sort_keys=True))

    @property
    def op(self) -> str:
        return str(self["op"])

    @property
    def inputs(self) -> list[str]:
        return list(self["inputs"]) if "inputs" in self else [self["input"]]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.items() if k != "op")
        return f"{self['op']}({args})"


def _name(value: Any, what: str, op: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"The '{what}' parameter of {op}() must be a column name; got {value!r}")
    return value


def _spec(op: str, column: str, output: str | None, **params: Any) -> TransformSpec:
    column = _name(column, "column", op)
    output = column if output is None else _name(output, "output", op)
    return TransformSpec(op=op, input=column, output=output, **params)


def _int(value: Any, what: str, op: str, column: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            f"The '{what}' parameter of {op}('{column}') must be an int >= {minimum};"
            f" got {value!r} instead"
        )
    return value


def _number(value: Any, what: str, op: str, column: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ConfigError(
            f"The '{what}' parameter of {op}('{column}') must be a number or None;"
            f" got {value!r} instead"
        )
    return float(value)


def zscore(column: str, *, output: str | None = None) -> TransformSpec:
    """(x - mean) / std of the train split (std 0 counts as 1); missing values become 0."""
    return _spec("zscore", column, output)


def min_max(column: str, *, output: str | None = None) -> TransformSpec:
    """(x - min) / (max - min) of the train split, so train values fall in [0, 1]."""
    return _spec("min_max", column, output)


def log(column: str, *, output: str | None = None) -> TransformSpec:
    """log1p(x); negatives are refused at fit time and treated as missing afterwards."""
    return _spec("log", column, output)


def clip(
    column: str,
    *,
    lower: float | None = None,
    upper: float | None = None,
    output: str | None = None,
) -> TransformSpec:
    """Values limited to [lower, upper] (either bound may be None)."""
    lo, hi = _number(lower, "lower", "clip", column), _number(upper, "upper", "clip", column)
    if lo is None and hi is None:
        raise ConfigError(f"clip('{column}') needs lower=, upper= or both")
    if lo is not None and hi is not None and lo > hi:
        raise ConfigError(
            f"clip('{column}') has an empty range: lower={lower} is above upper={upper}"
        )
    return _spec("clip", column, output, lower=lo, upper=hi)


def bucketize(column: str, *, buckets: int = 10, output: str | None = None) -> TransformSpec:
    """Bucket ids 0..buckets-1 between the train split's quantiles (fewer when they tie)."""
    return _spec(
        "bucketize", column, output, buckets=_int(buckets, "buckets", "bucketize", column, 2)
    )


def vocabulary(
    column: str,
    *,
    top_k: int | None = None,
    oov_buckets: int = 1,
    output: str | None = None,
) -> TransformSpec:
    """Ids of the ``top_k`` commonest values (ties by value); other values, unseen ones and
    missing ones go to ``oov_buckets`` ids after them."""
    if top_k is not None:
        _int(top_k, "top_k", "vocabulary", column, 1)
    oov = _int(oov_buckets, "oov_buckets", "vocabulary", column, 1)
    return _spec("vocabulary", column, output, top_k=top_k, oov_buckets=oov)


def one_hot(column: str, *, output: str | None = None) -> TransformSpec:
    """One column per id (ids from a step) or per value (plus ``<other>``) of the train split."""
    return _spec("one_hot", column, output)


def hashing(column: str, *, buckets: int, output: str | None = None) -> TransformSpec:
    """Ids ``fnv1a64(text) % buckets``: no vocabulary to fit, unseen values welcome."""
    return _spec("hashing", column, output, buckets=_int(buckets, "buckets", "hashing", column, 2))


def impute(
    column: str,
    *,
    strategy: str = "mean",
    value: Any = None,
    indicator: bool = True,
    output: str | None = None,
) -> TransformSpec:
    """Missing values filled with the train split's mean, median or most frequent value, or
    with ``value``; ``indicator`` adds ``<output>__missing`` (1.0 where a value was missing)."""
    if strategy not in IMPUTE_STRATEGIES:
        raise ConfigError(
            f"The 'strategy' parameter of impute('{column}') must be one of"
            f" {list(IMPUTE_STRATEGIES)}; got {strategy!r} instead"
        )
    if strategy == "constant":
        if value is None or not isinstance(value, str | int | float):
            raise ConfigError(
                f"impute('{column}', strategy='constant') needs value= (a number or a string);"
                f" got {value!r}"
            )
    elif value is not None:
        raise ConfigError(
            f"impute('{column}', strategy={strategy!r}) takes no value=; the value is fitted"
            " (use strategy='constant' to give one)"
        )
    if not isinstance(indicator, bool):
        raise ConfigError(f"The 'indicator' parameter of impute('{column}') must be a bool")
    return _spec("impute", column, output, strategy=strategy, value=value, indicator=indicator)


def cross(columns: Iterable[str], *, buckets: int, output: str | None = None) -> TransformSpec:
    """Ids ``fnv1a64(a + "\\x1f" + b ...) % buckets`` of the combined values of ``columns``."""
    names = [_name(c, "columns", "cross") for c in columns]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ConfigError(f"cross() needs at least two different columns; got {names}")
    _int(buckets, "buckets", "cross", "_x_".join(names), 2)
    out = "_x_".join(names) if output is None else _name(output, "output", "cross")
    return TransformSpec(op="cross", inputs=names, output=out, buckets=buckets)


def date_parts(
    column: str, *, parts: Iterable[str] = ("year", "month", "day", "dayofweek", "hour")
) -> TransformSpec:
    """Numbers ``<column>__<part>`` of a timestamp or date column (UTC; dayofweek Monday=0)."""
    chosen = list(parts)
    unknown = [p for p in chosen if p not in DATE_PARTS]
    if unknown or not chosen or len(set(chosen)) != len(chosen):
        raise ConfigError(
            f"The 'parts' parameter of date_parts('{column}') must name distinct parts of"
            f" {list(DATE_PARTS)}; got {chosen} instead"
        )
    return TransformSpec(op="date_parts", input=_name(column, "column", "date_parts"), parts=chosen)


def row_function(
    fn: Callable[..., Any], *, inputs: Iterable[str], outputs: Iterable[str]
) -> TransformSpec:
    """Your own row-wise function: ``fn({input: array})`` returns ``{output: array}`` (or one
    array for one output) of numbers, row i from row i only (nothing is fitted).

    It must be importable by name (a module-level function, not a lambda, nor one defined in
    ``__main__`` or inside another function), as the server imports it."""
    from lockgate.core.project_code import source_fingerprint

    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    where = f"row_function({qualname or fn!r})"
    if not callable(fn) or not module or not qualname:
        raise ConfigError(f"{where}: expected a function, got {fn!r}")
    if module == "__main__" or "<lambda>" in qualname or "<locals>" in qualname:
        raise ConfigError(
            f"{where}: the function must be importable by name for the server to load it;"
            f" {module}:{qualname} is not (a lambda, a nested function or one in __main__)",
            hint="define it at the top level of a module of your project and import it",
        )
    found = resolve_function(f"{module}:{qualname}")
    if found is not fn:
        raise ConfigError(f"{where}: {module}:{qualname} does not name this function")
    ins = [_name(c, "inputs", "row_function") for c in inputs]
    outs = [_name(c, "outputs", "row_function") for c in outputs]
    if not ins or not outs or len(set(outs)) != len(outs):
        raise ConfigError(f"{where} needs inputs= and distinct outputs=; got {ins}, {outs}")
    return TransformSpec(
        op="row_function",
        function=f"{module}:{qualname}",
        fingerprint=source_fingerprint(fn),
        inputs=ins,
        outputs=outs,
    )


def resolve_function(name: str) -> Any:
    """The object ``module:qualname`` names, or None when it cannot be imported."""
    import importlib

    module, _, qualname = name.partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError, ValueError):
        return None
    return found


_BUILDERS: dict[str, Callable[..., TransformSpec]] = {
    "zscore": zscore,
    "min_max": min_max,
    "log": log,
    "clip": clip,
    "bucketize": bucketize,
    "vocabulary": vocabulary,
    "one_hot": one_hot,
    "hashing": hashing,
    "impute": impute,
}


def spec_from_dict(data: Any) -> TransformSpec:
    """A spec from its JSON form (checked as the builder checks it)."""
    if isinstance(data, TransformSpec):
        return data
    if not isinstance(data, dict) or "op" not in data:
        raise ConfigError(
            f"a transform must be built by a function of lockgate.transforms; got {data!r}"
        )
    params = {k: v for k, v in data.items() if k != "op"}
    op = data["op"]
    try:
        if op in _BUILDERS:
            return _BUILDERS[op](params.pop("input"), **params)
        if op == "cross":
            return cross(params.pop("inputs"), **params)
        if op == "date_parts":
            return date_parts(params.pop("input"), **params)
        if op == "row_function":
            missing = {"function", "fingerprint", "inputs", "outputs"} - set(params)
            if missing:
                raise ConfigError(f"transform {data!r} lacks {sorted(missing)}; use row_function()")
            return TransformSpec(op=op, **params)
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"transform {data!r} is malformed: {exc}") from exc
    raise ConfigError(
        f"unknown transform {op!r}; the transforms are"
        f" {sorted([*_BUILDERS, 'cross', 'date_parts', 'row_function'])}"
    )
