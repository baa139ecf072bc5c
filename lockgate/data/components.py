"""The Data Pipeline's components: ingest, compute_statistics, infer_schema, validate_examples.

Thin wrappers: the work is in readers, split, statistics, schema and validate, which the
CLI and the server reuse without artifacts.
"""

from __future__ import annotations

import json
from pathlib import Path

from lockgate.core.artifacts import Anomalies, Examples, Schema, Statistics
from lockgate.core.component import Input, Output, component
from lockgate.core.fingerprint import path_fingerprint
from lockgate.core.runners import current_runner
from lockgate.errors import ConfigError, DataValidationError

SPLITS = ("train", "eval")


@component(path_params=("path",))
def ingest(
    examples: Output[Examples],
    *,
    path: str,
    format: str | None = None,
    eval_fraction: float = 0.2,
    salt: str = "",
    span: int = 0,
) -> None:
    """Read CSV, Parquet or JSON lines into Parquet examples with a stable train/eval split."""
    import pyarrow.parquet as pq

    from lockgate.data.readers import read_table
    from lockgate.data.split import split_table

    table = read_table(path, format=format)
    train, evaluation = split_table(table, eval_fraction=eval_fraction, salt=salt)
    for split, part in zip(SPLITS, (train, evaluation), strict=True):
        folder = Path(examples.uri) / split
        folder.mkdir()
        pq.write_table(part, folder / "part-0.parquet")
    examples.properties.update(
        splits={"train": train.num_rows, "eval": evaluation.num_rows},
        columns=table.column_names,
        span=span,
        source=path,
        source_fingerprint=path_fingerprint(path),
    )


def split_files(examples: Examples, split: str) -> list[Path]:
    """The Parquet files of one split of an Examples artifact."""
    files = sorted((Path(examples.uri) / split).glob("*.parquet"))
    if not files:
        raise ConfigError(f"examples artifact {examples.uri} has no '{split}' split")
    return files


def read_split(examples: Examples, split: str):  # -> pa.Table
    """One split of an Examples artifact as an Arrow table."""
    import pyarrow.parquet as pq

    return pq.ParquetDataset(split_files(examples, split)).read()


@component
def compute_statistics(examples: Input[Examples], statistics: Output[Statistics]) -> None:
    """Per-feature statistics of every split, and of all of them (``all.json``).

    The splits are accumulated as parallel shards on the current runner and then merged,
    which is the same code path a Ray runner uses across machines.
    """
    from lockgate.data.statistics import accumulate_files

    splits = [s for s in SPLITS if (Path(examples.uri) / s).exists()]
    accumulators = current_runner().map(
        lambda s: accumulate_files(split_files(examples, s)), splits
    )
    results = {split: acc.result() for split, acc in zip(splits, accumulators, strict=True)}
    merged = accumulators[0]
    for other in accumulators[1:]:
        merged = merged.merge(other)
    results["all"] = merged.result()
    for name, stats in results.items():
        (Path(statistics.uri) / f"{name}.json").write_text(json.dumps(stats, indent=1))
    statistics.properties["num_rows"] = {name: r["num_rows"] for name, r in results.items()}


def load_statistics(statistics: Statistics, split: str = "train") -> dict:
    return json.loads((Path(statistics.uri) / f"{split}.json").read_text())


@component(path_params=("schema_file",))
def infer_schema(
    statistics: Input[Statistics], schema: Output[Schema], *, schema_file: str | None = None
) -> None:
    """The schema: the curated ``schema_file`` when given, else inferred from the statistics
    of all splits (a schema describes the data set; inferring it from train alone would
    flag eval rows just outside train's range)."""
    from lockgate.data.schema import Schema as SchemaModel

    if schema_file is not None:
        model = SchemaModel.load(schema_file)
        schema.properties["source"] = schema_file
    else:
        model = SchemaModel.from_statistics(load_statistics(statistics, "all"))
        schema.properties["source"] = "inferred"
    model.dump(Path(schema.uri) / "schema.yaml")
    schema.properties["features"] = len(model.features)


def load_schema(schema: Schema):  # -> lockgate.data.schema.Schema
    from lockgate.data.schema import Schema as SchemaModel

    return SchemaModel.load(Path(schema.uri) / "schema.yaml")


@component
def validate_examples(
    statistics: Input[Statistics],
    schema: Input[Schema],
    anomalies: Output[Anomalies],
    *,
    stop_on: str = "error",
) -> None:
    """The first gate: compare every split's statistics with the schema.

    ``stop_on="error"`` stops the run on an error-severity anomaly, ``"warning"`` on any,
    ``"never"`` only reports.
    """
    from lockgate.data.validate import find_anomalies

    if stop_on not in ("error", "warning", "never"):
        raise ConfigError(
            f"The 'stop_on' parameter of validate_examples must be 'error', 'warning' or "
            f"'never'. Got {stop_on!r} instead."
        )
    model = load_schema(schema)
    found = {}
    for split in SPLITS:
        path = Path(statistics.uri) / f"{split}.json"
        if path.exists():
            found[split] = [
                a.to_dict() for a in find_anomalies(json.loads(path.read_text()), model)
            ]
    (Path(anomalies.uri) / "anomalies.json").write_text(json.dumps(found, indent=1, default=str))
    all_found = [dict(a, split=split) for split, items in found.items() for a in items]
    anomalies.properties.update(
        errors=sum(a["severity"] == "error" for a in all_found),
        warnings=sum(a["severity"] == "warning" for a in all_found),
        anomalies=all_found,
    )
    blocking = [
        a
        for a in all_found
        if stop_on == "warning" or (stop_on == "error" and a["severity"] == "error")
    ]
    if blocking:
        lines = "; ".join(f"[{a['split']}] {a['message']}" for a in blocking[:10])
        more = f" (and {len(blocking) - 10} more)" if len(blocking) > 10 else ""
        raise DataValidationError(
            f"data validation found {len(blocking)} anomalies that stop the run: {lines}{more}",
            anomalies=blocking,
            hint="fix the data, or update the schema if the change is intended",
        )
