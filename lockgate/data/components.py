"""The Data Pipeline's components: ingest, compute_statistics, infer_schema, validate_examples.

Thin wrappers: the work is in readers, split, statistics, schema and validate, which the
CLI and the server reuse without artifacts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lockgate.core.artifacts import Anomalies, Examples, Schema, Statistics
from lockgate.core.component import Input, Output, component
from lockgate.core.fingerprint import path_fingerprint
from lockgate.core.runners import current_runner
from lockgate.errors import ConfigError, DataValidationError

SPLITS = ("train", "eval")


def _ingest_sources(params: dict[str, Any]) -> dict[str, str] | None:
    """The cache's view of ingest: the resolved span's files, or None for a query (a
    database cannot be fingerprinted, so a query step always runs)."""
    from lockgate.data.spans import resolve_span

    if params.get("query") is not None or params.get("path") is None:
        return None
    return {"path": str(resolve_span(params["path"], params.get("span"))[0])}


@component(path_params=("path",), external_inputs=_ingest_sources)
def ingest(
    examples: Output[Examples],
    *,
    path: str | None = None,
    span: int | None = None,
    query: str | None = None,
    url: str | None = None,
    format: str | None = None,
    delimiter: str = ",",
    header: bool = True,
    quote_char: str | None = '"',
    encoding: str = "utf-8",
    eval_fraction: float = 0.2,
    salt: str = "",
    bad_rows: str = "error",
) -> None:
    """Read CSV, Parquet, JSON lines or a SQL query into Parquet examples with a stable
    train/eval split. ``path`` may hold ``{SPAN}`` (latest span, or ``span``); rows that do
    not parse stop the step, or with ``bad_rows="skip"`` go to ``rejected/``."""
    from lockgate.data.ingest import ingest_query, ingest_to_folder
    from lockgate.data.readers import CsvOptions
    from lockgate.data.spans import resolve_span
    from lockgate.data.sql import redact_url

    if (path is None) == (query is None) or (query is not None) != (url is not None):
        raise ConfigError(
            "ingest takes either path=... or query=... with url=...; got "
            f"path={path!r}, query={query!r}, url={'set' if url else None}",
            hint="e.g. ingest(path='data/span-{SPAN}/') or ingest(query='SELECT ...', url='sqlite:///x.db')",
        )
    if query is not None and url is not None:
        report = ingest_query(url, query, examples.uri, eval_fraction=eval_fraction, salt=salt)
        source, fingerprint = f"{redact_url(url)} {query}", None
    else:
        assert path is not None
        resolved, span = resolve_span(path, span)
        csv = CsvOptions(
            delimiter=delimiter, header=header, quote_char=quote_char, encoding=encoding
        )
        report = ingest_to_folder(
            resolved,
            examples.uri,
            format=format,
            csv=csv,
            eval_fraction=eval_fraction,
            salt=salt,
            bad_rows=bad_rows,
            span=span,
        )
        source, fingerprint = str(resolved), path_fingerprint(resolved)
    examples.properties.update(
        splits=report.splits,
        columns=report.columns,
        span=span if query is None else None,
        source=source,
        source_fingerprint=fingerprint,
        rejected=report.rejected,
        rejected_reasons=report.reasons,
        warnings=report.warnings,
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
