"""``lockgate init NAME --data PATH --label COLUMN``: a project made for the user's data.

The data is read once (its statistics, streamed) to write a pipeline that fits it: the
model, the pipeline and the served model are named NAME; the features are the data's
columns but the label; the gate's threshold fits the task (a classifier must beat always
guessing the most common class; a regressor must beat always guessing the mean, r2 > 0);
metrics per slice of a categorical column with a few values, when there is one. The schema
follows the curated flow of every project: the first run writes ``schema.yaml``.

Data up to ``COPY_LIMIT`` is copied into ``NAME/data/`` (the project is then whole, and the
run's cache key covers the copy); larger data is referenced where it is, by absolute path,
so that init never doubles gigabytes on disk.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from lockgate.cli.inputs import InputOptions
from lockgate.errors import ColumnNotFoundError, ConfigError, DataFileError

__all__ = ["COPY_LIMIT", "ProjectFromData", "create_project_from_data"]

#: Data of at most this many bytes is copied into the project; larger data is referenced.
COPY_LIMIT = 100 << 20
#: A column to slice the evaluation by has this many values at most (and two at least).
MAX_SLICE_VALUES = 10
_FEATURE_TYPES = ("int", "float", "string", "bool")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass
class ProjectFromData:
    """What init made, for the lines it prints."""

    folder: Path
    data: str  # the path in the pipeline
    copied: bool
    size: int
    label: str
    task: str
    task_reason: str
    features: list[str]
    left_out: dict[str, str] = field(default_factory=dict)
    slice_by: list[str] = field(default_factory=list)
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)

    def describe(self) -> list[str]:
        where = "copied into data/" if self.copied else "referenced where it is, not copied"
        gate = ", ".join(
            f"{metric} >= {bounds['lower_bound']}" for metric, bounds in self.thresholds.items()
        )
        lines = [
            f"Created {self.folder}/ for {self.data} ({where}, {_size(self.size)}).",
            f"  label:    {self.label} ({self.task}: {self.task_reason})",
            f"  features: {len(self.features)} ({', '.join(self.features[:8])}"
            f"{', ...' if len(self.features) > 8 else ''})",
            f"  gate:     {gate}; the schema is written to schema.yaml by the first run",
        ]
        if self.slice_by:
            lines.append(f"  slices:   metrics per value of {', '.join(self.slice_by)}")
        for name, why in self.left_out.items():
            lines.append(f"  left out: {name} ({why})")
        return lines


def create_project_from_data(
    target: Path, data: Path, label: str, read: InputOptions | None = None
) -> ProjectFromData:
    """Write ``target``/ (pipeline.py, lockgate.toml, data/) for ``data`` and ``label``."""
    from lockgate.cli.demo import _check_empty
    from lockgate.data.statistics import compute_statistics

    read = read or InputOptions()
    name = target.name
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"'{name}' cannot name a model: use letters, digits, '_', '.' and '-', starting "
            "with a letter or digit",
            hint="the project folder's name is the model's name in the registry and in URLs",
        )
    _check_empty(target)
    stats = compute_statistics([data], format=read.format, csv=read.csv)
    columns = stats["features"]
    if stats["num_rows"] == 0:
        raise DataFileError(
            f"{data} has no rows to train on ({len(columns)} columns, 0 rows)", path=str(data)
        )
    if label not in columns:
        raise ColumnNotFoundError(
            label, list(columns), where=str(data), hint="--label names the column to predict"
        )
    task, reason = _task(label, columns[label])
    features, left_out = [], {}
    for column, info in columns.items():
        if column == label:
            continue
        if info.get("type") in _FEATURE_TYPES:
            features.append(column)
        else:
            left_out[column] = f"type {info.get('type')}: not a number, string or bool"
    size = _bytes(data)
    made = ProjectFromData(
        folder=target,
        data="",
        copied=size <= COPY_LIMIT,
        size=size,
        label=label,
        task=task,
        task_reason=reason,
        features=features,
        left_out=left_out,
        slice_by=_slice_by(columns, label),
        thresholds=_thresholds(task, _majority_share(data, label, read)),
    )
    target.mkdir(parents=True, exist_ok=True)
    if made.copied:
        (target / "data").mkdir()
        if data.is_dir():
            shutil.copytree(data, target / "data" / data.name)
        else:
            shutil.copy2(data, target / "data" / data.name)
        made.data = f"data/{data.name}{'/' if data.is_dir() else ''}"
    else:
        made.data = str(data.resolve())
    _write(target, made, read)
    return made


def _task(label: str, info: dict[str, Any]) -> tuple[str, str]:
    """The task ``fit_transform`` will decide for the label (``transform.decide_task``'s
    rule, from the statistics)."""
    from lockgate.training.transform import MAX_INTEGER_CLASSES

    kind, distinct = info.get("type"), info.get("distinct")
    if kind == "int":
        few = distinct is not None and distinct <= MAX_INTEGER_CLASSES
        bound = f"at most {MAX_INTEGER_CLASSES}" if few else f"over {MAX_INTEGER_CLASSES}"
        why = f"integer with {distinct} distinct values, {bound}"
        return ("classification" if few else "regression"), why
    if kind == "float":
        return "regression", "a float column"
    if kind in ("string", "bool"):
        return "classification", f"a {kind} column with {distinct} distinct values"
    raise DataFileError(
        f"label '{label}' has type {kind}; a label is a string, bool or number column",
        column=label,
    )


def _thresholds(task: str, majority: float) -> dict[str, dict[str, float]]:
    if task == "regression":
        return {"r2": {"lower_bound": 0.0, "max_regression": 0.02}}
    floor = min(math.ceil(majority * 100) / 100, 0.99)
    return {"accuracy": {"lower_bound": floor, "max_regression": 0.02}}


def _majority_share(data: Path, label: str, read: InputOptions) -> float:
    """The share of the label's most common value among the rows that have one (streamed:
    the statistics keep top values for text columns only)."""
    from collections import Counter

    import pyarrow.compute as pc

    from lockgate.data.readers import iter_batches

    counts: Counter[Any] = Counter()
    for batch in iter_batches(data, format=read.format, csv=read.csv):
        for item in pc.value_counts(batch.column(label).drop_null()).to_pylist():
            counts[item["values"]] += item["counts"]
    total = sum(counts.values())
    return max(counts.values()) / total if total else 0.0


def _slice_by(columns: dict[str, dict[str, Any]], label: str) -> list[str]:
    """The categorical column with the fewest values (2 to MAX_SLICE_VALUES), if any."""
    candidates = [
        (info.get("distinct") or 0, name)
        for name, info in columns.items()
        if name != label
        and info.get("type") in ("string", "bool")
        and 2 <= (info.get("distinct") or 0) <= MAX_SLICE_VALUES
    ]
    return [min(candidates)[1]] if candidates else []


def _bytes(data: Path) -> int:
    if data.is_dir():
        return sum(f.stat().st_size for f in data.rglob("*") if f.is_file())
    return data.stat().st_size


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _literal(value: Any) -> str:
    """A Python literal (strings double-quoted, as the formatter writes them)."""
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def _list(values: list[str], indent: str = "") -> str:
    """A Python list literal, one item per line when it does not fit on one."""
    one = "[" + ", ".join(_literal(v) for v in values) + "]"
    if len(one) + len(indent) < 80:
        return one
    return "[\n" + "".join(f"{indent}    {_literal(v)},\n" for v in values) + f"{indent}]"


def _write(target: Path, made: ProjectFromData, read: InputOptions) -> None:
    folder = resources.files("lockgate") / "templates" / "from_data"
    ingest = {"path": made.data, "eval_fraction": 0.2, **read.ingest_params()}
    args = ", ".join(f"{k}={_literal(v)}" for k, v in ingest.items())
    if made.task == "regression":
        gate = "r2 > 0 beats always guessing the mean; also mae, rmse"
    else:
        bound = made.thresholds["accuracy"]["lower_bound"]
        gate = f"{bound} is the share of the most common class (always guessing it)"
    task_comment = f"# Task: {made.task} ({made.task_reason})"
    values = {
        "name": target.name,
        "name_literal": _literal(target.name),
        "label": made.label,
        "label_literal": _literal(made.label),
        "data_label": made.data,
        "task_comment": task_comment,
        "features": _list(made.features),
        "ingest_args": args,
        "linear_trainer": (
            "linear_regression" if made.task == "regression" else "logistic_regression"
        ),
        "slice_by": _list(made.slice_by, "        "),
        "slice_comment": ""
        if made.slice_by
        else "  # no categorical column with 2 to 10 values to slice by",
        "threshold_comment": gate,
        "thresholds": json.dumps(made.thresholds),
    }
    for template, out in (
        ("pipeline.py.tmpl", "pipeline.py"),
        ("lockgate.toml.tmpl", "lockgate.toml"),
    ):
        text = Template((folder / template).read_text(encoding="utf-8")).substitute(values)
        (target / out).write_text(text, encoding="utf-8")
