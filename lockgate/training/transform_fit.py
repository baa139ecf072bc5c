"""Fitting the transform library on the train split: a plan, then streaming passes.

``make_plan`` checks every step against the columns it reads (present, of a kind it takes)
before any data is read. ``fit_library`` then streams the split's record batches through
the data pipeline's accumulators (``Moments``, ``NumericAccumulator``'s exact counts or KLL
sketch, ``ValueCounts``): every analyzer whose input needs no other analyzer's result is fed
in the first pass, as are the default features and the label; an analyzer downstream of
another is fed in the next pass, with the earlier results applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockgate.data.statistics.frequency import ValueCounts
from lockgate.data.statistics.histograms import exact_functions, sketch_functions
from lockgate.data.statistics.numeric import NumericAccumulator
from lockgate.data.statistics.weighted import Moments
from lockgate.errors import ColumnNotFoundError, ConfigError, DataError
from lockgate.training.transform_steps import (
    Value,
    apply_step,
    as_text,
    describe,
    needs_fit,
    output_kinds,
    raw_kind,
    raw_value,
    step_inputs,
    step_outputs,
)
from lockgate.transforms import TransformSpec, resolve_function, spec_from_dict

__all__ = ["Plan", "fit_library", "make_plan", "resolve_functions"]

_WORKING_KIND = {"numeric": "number", "string": "text", "bool": "text", "timestamp": "time"}


@dataclass
class Plan:
    """The steps (with an implicit ``one_hot`` for text left at the end), the raw columns
    they read (name -> kind), the features left to the defaults and the emitted columns."""

    steps: list[TransformSpec]
    inputs: dict[str, str]
    defaults: list[str]
    emitted: list[str]
    fit: list[bool] = field(default_factory=list)
    in_kinds: list[str] = field(default_factory=list)


def make_plan(
    transforms: Iterable[Any],
    columns: Mapping[str, str | None],
    *,
    label: str,
    features: list[str],
) -> Plan:
    """Check the steps against the table's columns (name -> raw kind) and plan them."""
    specs = [spec_from_dict(t) for t in transforms]
    kinds: dict[str, str] = {}
    inputs: dict[str, str] = {}
    written: list[str] = []
    fit: list[bool] = []
    in_kinds: list[str] = []
    for spec in specs:
        for name in step_inputs(spec):
            if name in kinds:
                continue
            if name == label:
                raise ConfigError(
                    f"{describe(spec)} reads the label '{label}'; a label is no feature"
                )
            if name not in columns:
                known = [c for c in columns if c != label] + written
                raise ColumnNotFoundError(name, known, where=f"the train split ({describe(spec)})")
            raw = columns[name]
            if raw is None:
                raise DataError(
                    f"{describe(spec)}: column '{name}' has a type lockgate cannot transform"
                )
            inputs[name] = raw
            kinds[name] = _WORKING_KIND[raw]
        if spec.op == "row_function":
            _check_function(spec)
        fit.append(needs_fit(spec, kinds))
        in_kinds.append(kinds[step_inputs(spec)[0]])
        for name, kind in output_kinds(spec, kinds).items():
            if name == label:
                raise ConfigError(
                    f"{describe(spec)} writes the label '{label}'; name its output otherwise"
                )
            kinds[name] = kind
            if name not in written:
                written.append(name)
    for name in written:
        if kinds[name] == "text":  # text cannot be a number: encoded as a text feature is
            specs.append(spec_from_dict({"op": "one_hot", "input": name, "output": name}))
            fit.append(True)
            in_kinds.append("text")
    named = set(inputs) | set(written)
    defaults = [f for f in features if f not in named]
    return Plan(specs, inputs, defaults, written, fit, in_kinds)


def _check_function(spec: TransformSpec) -> None:
    from lockgate.core.project_code import source_fingerprint

    fn = resolve_function(spec["function"])
    if fn is None:
        raise ConfigError(
            f"{describe(spec)}: '{spec['function']}' cannot be imported",
            hint="define the function at the top level of an importable module",
        )
    if source_fingerprint(fn) != spec["fingerprint"]:
        raise ConfigError(
            f"{describe(spec)}: the function's code changed since the spec was built;"
            " build it again with row_function(...)"
        )


def resolve_functions(steps: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``module:qualname`` -> function for every row_function, unchecked (fit time)."""
    return {
        s["function"]: resolve_function(s["function"]) for s in steps if s["op"] == "row_function"
    }


# ---- analyzers ------------------------------------------------------------------------
class _Analyzer:
    def update(self, values: list[Value]) -> None:
        raise NotImplementedError

    def result(self) -> dict[str, Any]:
        raise NotImplementedError


def _finite(x: np.ndarray) -> np.ndarray:
    return x[np.isfinite(x)]


class _MeanStd(_Analyzer):
    def __init__(self, impute: bool) -> None:
        self.impute = impute
        self.moments = Moments()

    def update(self, values: list[Value]) -> None:
        self.moments.update(_finite(values[0].data))

    def result(self) -> dict[str, Any]:
        mean = float(self.moments.mean) if self.moments.weight else 0.0
        if self.impute:
            return {"value": mean}
        std = self.moments.std() or 0.0
        return {"mean": mean, "std": std if std > 0 else 1.0}


class _Numeric(_Analyzer):
    """min/max, median or quantile edges from the statistics' NumericAccumulator."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.spec = spec
        self.acc = NumericAccumulator("float")

    def update(self, values: list[Value]) -> None:
        self.acc.update(pa.array(_finite(values[0].data), pa.float64()))

    def _quantiles(self, ranks: list[float]) -> list[float]:
        acc = self.acc
        if acc.count == 0:
            return []
        if acc.sketch is None:
            values = acc.counts.values.to_numpy().astype(np.float64)
            quantiles, _ = exact_functions(values, acc.counts.counts)
        else:
            quantiles, _ = sketch_functions(acc.sketch, acc.count)
        return [float(q) for q in quantiles(ranks)]

    def result(self) -> dict[str, Any]:
        op = self.spec["op"]
        if op == "min_max":
            empty = self.acc.min is None or self.acc.max is None
            lo, hi = (0.0, 1.0) if empty else (float(self.acc.min), float(self.acc.max))  # type: ignore[arg-type]
            return {"min": lo, "max": hi}
        if op == "bucketize":
            n = self.spec["buckets"]
            edges = np.unique(self._quantiles([i / n for i in range(1, n)]))
            return {"edges": [float(e) for e in edges]}
        median = self._quantiles([0.5])
        return {"value": median[0] if median else 0.0}


class _Counts(_Analyzer):
    """Vocabularies and most frequent values from the statistics' ValueCounts."""

    def __init__(self, spec: Mapping[str, Any], kind: str) -> None:
        self.spec = spec
        self.text = spec["op"] != "impute" or kind == "text"
        self.counts = ValueCounts(pa.large_string() if self.text else pa.float64())

    def update(self, values: list[Value]) -> None:
        value = values[0]
        if self.text:
            self.counts.update(as_text(value).drop_null())
        else:
            self.counts.update(pa.array(_finite(value.data), pa.float64()))

    def result(self) -> dict[str, Any]:
        if self.spec["op"] == "impute":
            top = self.counts.top(1)
            if top:
                return {"value": top[0][0]}
            return {"value": "" if self.text else 0.0}
        k = self.spec.get("top_k") or len(self.counts.values)
        return {"vocabulary": [v for v, _ in self.counts.top(k)]}


def _analyzer(spec: Mapping[str, Any], kind: str) -> _Analyzer:
    op = spec["op"]
    if op == "zscore" or (op == "impute" and spec["strategy"] == "mean"):
        return _MeanStd(impute=op == "impute")
    if op in ("min_max", "bucketize") or (op == "impute" and spec["strategy"] == "median"):
        return _Numeric(spec)
    return _Counts(spec, kind)


class _Defaults:
    """Today's default for features no step names: mean/std, or the value counts."""

    def __init__(
        self, names: list[str], kinds: Mapping[str, str | None], types: Mapping[str, pa.DataType]
    ) -> None:
        self.kinds = {}
        for name in names:
            kind = kinds[name]
            if kind not in ("numeric", "string", "bool"):
                hint = ", or give it a step such as date_parts" if kind == "timestamp" else ""
                raise DataError(
                    f"feature '{name}' has type {types[name]}; expected a number, string or bool"
                    f" column (select features explicitly to leave it out{hint})"
                )
            self.kinds[name] = kind
        self.moments = {n: Moments() for n, k in self.kinds.items() if k == "numeric"}
        self.counts = {
            n: ValueCounts(pa.bool_() if k == "bool" else pa.large_string())
            for n, k in self.kinds.items()
            if k != "numeric"
        }

    def update(self, batch: pa.Table) -> None:
        for name, moments in self.moments.items():
            x = raw_value(name, "numeric", batch.column(name)).data
            moments.update(x[~np.isnan(x)])
        for name, counts in self.counts.items():
            column = batch.column(name).combine_chunks()
            if pa.types.is_dictionary(column.type):
                column = pc.cast(column, column.type.value_type)
            counts.update(pc.cast(column, counts.value_type))

    def result(self) -> list[Any]:
        from lockgate.training.transform import FeatureTransform

        out = []
        for name, kind in self.kinds.items():
            if kind == "numeric":
                m = self.moments[name]
                std = m.std() or 0.0
                mean = float(m.mean) if m.weight else 0.0
                out.append(
                    FeatureTransform(name, "numeric", mean=mean, std=std if std > 0 else 1.0)
                )
            else:
                counts = self.counts[name]
                vocab = tuple(v for v, _ in counts.top(len(counts.values)))
                out.append(FeatureTransform(name, kind, vocabulary=vocab))  # type: ignore[arg-type]
        return out


# ---- the passes -----------------------------------------------------------------------
def _actions(plan: Plan, fitted: list[dict[str, Any] | None]) -> list[str]:
    """Per step, in this pass: "analyze" (feed its analyzer), "apply", or "skip" (it reads
    what an analyzer of this pass has not produced yet)."""
    blocked: set[str] = set()
    actions = []
    for spec, state in zip(plan.steps, fitted, strict=True):
        outs = step_outputs(spec)
        if any(name in blocked for name in step_inputs(spec)):
            actions.append("skip")
            blocked.update(outs)
        elif state is None:
            actions.append("analyze")
            blocked.update(outs)
        else:
            actions.append("apply")
            blocked.difference_update(outs)
    return actions


def fit_library(
    batches: Callable[[], Iterable[pa.RecordBatch]],
    schema: pa.Schema,
    *,
    label: str,
    features: list[str] | None,
    transforms: Iterable[Any],
    task: str | None,
) -> tuple[Any, int]:
    """The fitted graph (format 2) and the number of train rows with a label."""
    from lockgate.training.transform import (
        FORMAT_VERSION_LIBRARY,
        TransformGraph,
        drop_missing_label,
        task_and_classes,
    )

    kinds = {f.name: raw_kind(f.type) for f in schema}
    types = {f.name: f.type for f in schema}
    if label not in kinds:
        raise ColumnNotFoundError(label, schema.names, where="the training table (label)")
    if features is None:
        features = [name for name in schema.names if name != label]
    if label in features:
        raise ConfigError(f"the label '{label}' cannot also be a feature")
    for name in features:
        if name not in kinds:
            raise ColumnNotFoundError(name, schema.names, where="the training table")
    plan = make_plan(transforms, kinds, label=label, features=features)
    if not plan.defaults and not plan.emitted:
        raise ConfigError("no features to transform; the table has only the label column")
    defaults = _Defaults(plan.defaults, kinds, types)
    functions = resolve_functions(plan.steps)
    fitted: list[dict[str, Any] | None] = [None if f else {} for f in plan.fit]
    labels: list[pa.Array] = []
    rows, first = 0, True
    while first or any(state is None for state in fitted):
        actions = _actions(plan, fitted)
        analyzers: dict[int, _Analyzer] = {}
        for raw_batch in batches():
            batch = drop_missing_label(pa.Table.from_batches([raw_batch]), label)
            if first:
                rows += batch.num_rows
                defaults.update(batch)
                labels.append(pc.unique(batch.column(label).combine_chunks()))
            env = {n: raw_value(n, k, batch.column(n)) for n, k in plan.inputs.items()}
            for i, (spec, action) in enumerate(zip(plan.steps, actions, strict=True)):
                if action == "analyze":
                    acc = analyzers.setdefault(i, _analyzer(spec, plan.in_kinds[i]))
                    acc.update([env[n] for n in step_inputs(spec)])
                elif action == "apply":
                    apply_step(_fitted(spec, fitted[i]), env, functions, fitting=True)
        for i, action in enumerate(actions):
            if action == "analyze":
                fitted[i] = analyzers[i].result() if i in analyzers else _empty_result(plan, i)
        first = False
    label_column = (
        pa.chunked_array(labels, type=types[label])
        if labels
        else pa.chunked_array([], type=types[label])
    )
    resolved, reason, classes = task_and_classes(label, label_column, task)
    graph = TransformGraph(
        label=label,
        task=resolved,
        columns=tuple(defaults.result()),
        label_classes=classes,
        task_reason=reason,
        format_version=FORMAT_VERSION_LIBRARY,
        steps=tuple(_fitted(spec, state) for spec, state in zip(plan.steps, fitted, strict=True)),
        inputs=tuple(plan.inputs.items()),
        emitted=tuple(plan.emitted),
        functions=functions,
    )
    return graph, rows


def _fitted(spec: TransformSpec, state: dict[str, Any] | None) -> dict[str, Any]:
    step = dict(spec)
    if state:
        step["fitted"] = state
    return step


def _empty_result(plan: Plan, i: int) -> dict[str, Any]:
    """An analyzer that saw no batch at all (an empty split): its result on no values."""
    return _analyzer(plan.steps[i], plan.in_kinds[i]).result()
