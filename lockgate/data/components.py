"""The Data Pipeline's components: ingest, compute_statistics, infer_schema,
validate_examples, and check_skew (training data against the serving request log).

Thin wrappers: the work is in readers, split, statistics, schema and validate, which the
CLI and the server reuse without artifacts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockgate.core.artifacts import Anomalies, Examples, InferenceLog, Schema, Statistics
from lockgate.core.component import Input, Output, component
from lockgate.core.fingerprint import path_fingerprint
from lockgate.core.runners import current_runner
from lockgate.errors import ConfigError, DataValidationError

if TYPE_CHECKING:
    import pyarrow as pa

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
    column_names: list[str] | None = None,
    quote_char: str | None = '"',
    encoding: str = "utf-8",
    eval_fraction: float = 0.2,
    salt: str = "",
    bad_rows: str = "keep",
) -> None:
    """Read CSV, Parquet, JSON lines or a SQL query into Parquet examples with a stable
    train/eval split. ``path`` may hold ``{SPAN}`` (latest span, or ``span``).

    A value that does not parse as its column's type (``"two"`` in an int column) is a
    finding about the data: with ``bad_rows="keep"`` its row is kept with the value as null
    and ``invalid_values.json`` records it, so that the data gate reports a ``type_mismatch``
    and stops the run. ``bad_rows="skip"`` sets such rows aside in ``rejected/`` (counted);
    ``"error"`` stops this step at the first. A malformed row (wrong field count) stops the
    step unless skipped."""
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
        report = ingest_query(
            url, query, str(examples.path), eval_fraction=eval_fraction, salt=salt
        )
        source, fingerprint = f"{redact_url(url)} {query}", None
    else:
        assert path is not None
        resolved, span = resolve_span(path, span)
        csv = CsvOptions(
            delimiter=delimiter,
            header=header,
            quote_char=quote_char,
            encoding=encoding,
            column_names=None if column_names is None else tuple(column_names),
        )
        report = ingest_to_folder(
            resolved,
            str(examples.path),
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
        invalid_values=report.invalid_values,
    )


def split_files(examples: Examples, split: str) -> list[Path]:
    """The Parquet files of one split of an Examples artifact."""
    files = sorted(examples.split_path(split).glob("*.parquet"))
    if not files:
        raise ConfigError(f"examples artifact {examples.uri} has no '{split}' split")
    return files


def read_split(examples: Examples, split: str):  # -> pa.Table
    """One split of an Examples artifact as an Arrow table."""
    import pyarrow.parquet as pq

    return pq.ParquetDataset(split_files(examples, split)).read()


@component
def compute_statistics(examples: Input[Examples], statistics: Output[Statistics]) -> None:
    """Per-feature statistics of every split, and of all of them (``all.json``, which also
    holds ingest's ``invalid_values``: values that did not parse, by column).

    Each file is a shard accumulated on the current runner (a thread here, a Ray task on
    the Ray runner) and merged in file order, so that every runner gives the same bytes.
    """
    from lockgate.data.ingest import INVALID_VALUES_FILE
    from lockgate.data.statistics import accumulate_files

    splits = [s for s in SPLITS if examples.split_path(s).exists()]
    shards = [(s, f) for s in splits for f in split_files(examples, s)]  # one per file
    per_file = current_runner().map(lambda shard: accumulate_files(shard[1]), shards)
    accumulators = [merge_in_order(per_file, shards, split) for split in splits]
    results = {split: acc.result() for split, acc in zip(splits, accumulators, strict=True)}
    merged = accumulators[0]
    for other in accumulators[1:]:
        merged = merged.merge(other)
    results["all"] = merged.result()
    invalid = examples.path / INVALID_VALUES_FILE
    if invalid.exists():  # values ingest kept as nulls: counted on all splits at once
        results["all"]["invalid_values"] = json.loads(invalid.read_text(encoding="utf-8"))
    for name, stats in results.items():
        (statistics.path / f"{name}.json").write_text(json.dumps(stats, indent=1))
    statistics.properties["num_rows"] = {name: r["num_rows"] for name, r in results.items()}
    _write_statistics_report(statistics.path, results)


def merge_in_order(accumulators: list[Any], shards: list[tuple[str, Path]], split: str) -> Any:
    """The shards of one split merged in file order: the same result on any runner."""
    mine = [acc for acc, (s, _) in zip(accumulators, shards, strict=True) if s == split]
    merged = mine[0]
    for other in mine[1:]:
        merged = merged.merge(other)
    return merged


def _write_statistics_report(folder: Path, results: dict[str, dict]) -> None:
    """``report.html``: train and eval side by side (one split alone when there is one)."""
    from lockgate.data.report import render_html

    if "train" in results and "eval" in results:
        html = render_html(
            results["train"],
            title="Statistics: train and eval",
            label="train",
            compare=results["eval"],
            compare_label="eval",
        )
    else:
        split = next(iter(results))
        html = render_html(results[split], title=f"Statistics: {split}", label=split)
    (folder / "report.html").write_text(html, encoding="utf-8")


def load_statistics(statistics: Statistics, split: str = "train") -> dict:
    return json.loads((statistics.path / f"{split}.json").read_text())


def _curated_schema(params: dict[str, Any]) -> dict[str, str] | None:
    """The cache's view of infer_schema: the curated file's content when it exists; when it
    does not, None (never cached: the step must run to write it)."""
    path = params.get("schema_file")
    if path is None:
        return {}
    return {"schema_file": path} if Path(path).exists() else None


def _write_curated_schema(
    context: Any, outputs: dict[str, Any], params: dict[str, Any], transaction: Any
) -> None:
    """On the driver, once the Schema is published: the first run's inferred schema becomes
    the project's ``schema_file`` (never overwriting one that appeared meanwhile)."""
    target = params.get("schema_file")
    written = outputs["schema"].properties.get("written_to")
    if target is None or written is None:
        return
    source = outputs["schema"].path / "schema.yaml"
    final = Path(target)
    final.parent.mkdir(parents=True, exist_ok=True)
    # Whole or not at all: a kill mid-write must not leave a half schema that later runs
    # would validate against. A hard link publishes the finished file and refuses an
    # existing one in one step.
    draft = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    draft.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    try:
        os.link(draft, final)
    except FileExistsError:
        pass
    finally:
        draft.unlink(missing_ok=True)


@component(
    path_params=("schema_file",),
    external_inputs=_curated_schema,
    on_publish=_write_curated_schema,
)
def infer_schema(
    statistics: Input[Statistics], schema: Output[Schema], *, schema_file: str | None = None
) -> None:
    """The schema. With ``schema_file`` (the curated schema, e.g. ``"schema.yaml"`` in the
    project, kept in version control): read from that file when it exists (its content is in
    the cache key), else inferred from this data and written there for people to review —
    SchemaGen once, then ImportSchemaGen, as TFX has it. ``lockgate schema update`` shows
    what new data would change in it. Without ``schema_file``: inferred from every run's
    own data, which then always fits it (fine for a first look, not for a gate).

    Inferred from the statistics of all splits: a schema describes the data set; inferring
    it from train alone would flag eval rows just outside train's range."""
    from lockgate.data.schema import Schema as SchemaModel

    if schema_file is not None and Path(schema_file).exists():
        model = SchemaModel.load(schema_file)
        schema.properties["source"] = schema_file
    else:
        model = SchemaModel.from_statistics(load_statistics(statistics, "all"))
        schema.properties["source"] = "inferred"
        if schema_file is not None:
            schema.properties["written_to"] = schema_file
    model.dump(schema.path / "schema.yaml")
    schema.properties["features"] = len(model.features)


def load_schema(schema: Schema):  # -> lockgate.data.schema.Schema
    from lockgate.data.schema import Schema as SchemaModel

    return SchemaModel.load(schema.path / "schema.yaml")


@component
def validate_examples(
    statistics: Input[Statistics],
    schema: Input[Schema],
    anomalies: Output[Anomalies],
    previous_statistics: Input[Statistics] | None = None,
    examples: Input[Examples] | None = None,
    *,
    stop_on: str = "error",
) -> None:
    """The first gate: compare every split's statistics with the schema.

    With ``previous_statistics`` (the span before, e.g. from ``previous_span_statistics()``)
    each split is also checked for drift and for a cardinality jump against the same split
    of that span. With ``examples`` and a ``key`` in the schema, repeated keys are counted
    on the data. ``stop_on="error"`` stops the run on an error-severity anomaly,
    ``"warning"`` on any, ``"never"`` only reports. Writes ``anomalies.json`` and
    ``report.html``. Keys are checked across all splits at once (a key in both train and
    eval is a leak), reported under ``all``.
    """
    from lockgate.data.keys import find_duplicate_keys
    from lockgate.data.validate import (
        duplicate_key_anomalies,
        find_anomalies,
        invalid_value_anomalies,
    )

    _check_stop_on(stop_on, "validate_examples")
    model = load_schema(schema)
    if model.key and examples is None:
        raise ConfigError(
            f"the schema declares the key {model.key}, but validate_examples was not given "
            "the examples to check it on",
            hint="pass examples=<ingest step>.outputs.examples",
        )
    counted_on_data = bool(model.key) and examples is not None
    found: dict[str, list[dict]] = {}
    stats_of: dict[str, dict] = {}
    previous_of: dict[str, dict | None] = {}
    all_stats = _optional_statistics(statistics, "all") or {}
    for split in SPLITS:
        path = statistics.path / f"{split}.json"
        if not path.exists():
            continue
        stats_of[split] = json.loads(path.read_text())
        previous_of[split] = (
            _optional_statistics(previous_statistics, split) if previous_statistics else None
        )
        found[split] = [
            a.to_dict()
            for a in find_anomalies(
                stats_of[split],
                model,
                previous_stats=previous_of[split],
                duplicate_keys=0 if counted_on_data else None,  # counted below, once
                bad_value_nulls=_bad_value_nulls(stats_of[split], all_stats),
            )
        ]
    if all_stats.get("invalid_values"):  # counted by ingest on all splits at once
        found.setdefault("all", []).extend(
            a.to_dict() for a in invalid_value_anomalies(all_stats, model)
        )
    if counted_on_data:
        assert examples is not None and model.key is not None
        files = [f for split in stats_of for f in split_files(examples, split)]
        duplicates = find_duplicate_keys(_column_batches(files, model.key), model.key)
        found.setdefault("all", []).extend(
            a.to_dict() for a in duplicate_key_anomalies(model, duplicates)
        )
    (anomalies.path / "anomalies.json").write_text(json.dumps(found, indent=1, default=str))
    all_found = [dict(a, split=split) for split, items in found.items() for a in items]
    _write_anomalies_report(anomalies.path, stats_of, previous_of, found)
    anomalies.properties.update(
        errors=sum(a["severity"] == "error" for a in all_found),
        warnings=sum(a["severity"] == "warning" for a in all_found),
        anomalies=all_found,
        compared_with_previous=previous_statistics is not None,
    )
    _stop_if_blocking(all_found, stop_on, "data validation")


def _bad_value_nulls(split_stats: dict, all_stats: dict) -> dict[str, int]:
    """Nulls of a split that were values that did not parse. Ingest counts those over all
    splits; a split's nulls are all such values only when every null of the data set is."""
    out: dict[str, int] = {}
    for name, found in (all_stats.get("invalid_values") or {}).items():
        missing = all_stats.get("features", {}).get(name, {}).get("missing")
        if missing is not None and missing <= found["count"]:
            out[name] = split_stats.get("features", {}).get(name, {}).get("missing", 0)
    return out


def _check_stop_on(stop_on: str, step: str) -> None:
    if stop_on not in ("error", "warning", "never"):
        raise ConfigError(
            f"The 'stop_on' parameter of {step} must be 'error', 'warning' or "
            f"'never'. Got {stop_on!r} instead."
        )


def _stop_if_blocking(found: list[dict], stop_on: str, what: str) -> None:
    """Raise the gate's error when ``found`` holds anomalies that ``stop_on`` says stop.

    The step's outputs (anomalies.json, report.html) are written before this and published
    with the blocked execution: the gate's decision is separate from the finding."""
    blocking = [
        a
        for a in found
        if stop_on == "warning" or (stop_on == "error" and a["severity"] == "error")
    ]
    if blocking:
        lines = "; ".join(f"[{a['split']}] {a['message']}" for a in blocking[:10])
        more = f" (and {len(blocking) - 10} more)" if len(blocking) > 10 else ""
        error = DataValidationError(
            f"{what} found {len(blocking)} anomalies that stop the run: {lines}{more}",
            anomalies=blocking,
            hint="fix the data, or, if the change is intended, update the schema "
            "(lockgate schema update shows what the new data would change)",
        )
        error.publish_outputs = True  # the findings and their report are kept all the same
        raise error


def _optional_statistics(statistics: Statistics, split: str) -> dict | None:
    path = statistics.path / f"{split}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _write_anomalies_report(
    folder: Path,
    stats_of: dict[str, dict],
    previous_of: dict[str, dict | None],
    found: dict[str, list[dict]],
) -> None:
    """``report.html``: the train split (else the first) with its anomalies highlighted,
    beside the previous span when there is one."""
    from lockgate.data.report import render_html

    if not stats_of:
        return
    split = "train" if "train" in stats_of else next(iter(stats_of))
    previous = previous_of.get(split)
    html = render_html(
        stats_of[split],
        title=f"Validation: {split} split",
        label=split,
        anomalies=found.get(split, []) + found.get("all", []),  # "all": keys, bad values
        compare=previous,
        compare_label=f"previous span ({split})",
    )
    (folder / "report.html").write_text(html, encoding="utf-8")


@component
def check_skew(
    statistics: Input[Statistics],
    inference_log: Input[InferenceLog] | None,
    skew: Output[Anomalies],
    schema: Input[Schema] | None = None,
    *,
    split: str = "train",
    stop_on: str = "error",
) -> None:
    """Training/serving skew: the ``split`` statistics against the requests in
    ``inference_log`` (from ``latest_inference_log(model)``), with the schema's
    ``skew_threshold`` per feature. The log's ``_``-prefixed columns (answers, request ids)
    are not features. No log yet (nothing served): an empty report, nothing stops.
    Writes ``skew.json`` and ``report.html``.
    """
    from lockgate.data.drift import compare_statistics
    from lockgate.data.report import render_html

    _check_stop_on(stop_on, "check_skew")
    folder = skew.path
    if inference_log is None:
        (folder / "skew.json").write_text(json.dumps({"passed": True, "features": []}))
        skew.properties.update(errors=0, warnings=0, anomalies=[], serving_rows=0)
        return
    training = load_statistics(statistics, split)
    files = sorted(inference_log.path.rglob("*.parquet"))
    if not files:
        raise ConfigError(f"inference log {inference_log.uri} holds no Parquet files")
    features = [c for c in _parquet_columns(files[0]) if not c.startswith("_")]
    # one shard per log file on the current runner (threads here, Ray tasks on Ray),
    # merged in file order: the same statistics on every runner
    per_file = current_runner().map(lambda path: _accumulate_columns(path, features), files)
    accumulator = per_file[0]
    for other in per_file[1:]:
        accumulator = accumulator.merge(other)
    serving = accumulator.result()
    model = load_schema(schema) if schema is not None else None
    report = compare_statistics(training, serving, schema=model, kind="skew")
    (folder / "skew.json").write_text(json.dumps(report.to_dict(), indent=1, default=str))
    html = render_html(
        serving,
        title=f"Skew: {split} split against serving requests",
        label="serving",
        compare=training,
        compare_label=split,
        drift=report.to_dict(),
    )
    (folder / "report.html").write_text(html, encoding="utf-8")
    found = [dict(a.to_dict(), split="serving") for a in report.anomalies()]
    skew.properties.update(
        errors=sum(a["severity"] == "error" for a in found),
        warnings=sum(a["severity"] == "warning" for a in found),
        anomalies=found,
        serving_rows=serving["num_rows"],
    )
    _stop_if_blocking(found, stop_on, "the skew check")


def _accumulate_columns(path: Path, columns: list[str]) -> Any:
    """The statistics accumulator of ``columns`` of one Parquet file (a shard)."""
    from lockgate.data.statistics import TableStatisticsAccumulator

    accumulator = TableStatisticsAccumulator()
    for batch in _column_batches([path], columns):
        accumulator.update(batch)
    return accumulator


def _parquet_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return list(pq.read_schema(path).names)


def _column_batches(files: list[Path], columns: list[str]) -> Iterator[pa.RecordBatch]:
    """Only ``columns`` of Parquet ``files``, batch by batch (memory: those columns)."""
    import pyarrow.parquet as pq

    from lockgate.errors import ColumnNotFoundError

    for path in files:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        for column in columns:
            if column not in names:
                raise ColumnNotFoundError(column, names, where=str(path))
        yield from parquet.iter_batches(columns=columns)
