"""Batch inference: a pushed model's answers for every row of an Examples artifact.

TFX's BulkInferrer without TensorFlow. The model is loaded through
``PipelineServable.load`` (folder fingerprint and model sha256 checked first), exactly as
the server loads it, so a row gets the answer the server would give. Each Parquet file of
the examples is a shard on the current runner (a thread here, a Ray task on the Ray
runner) that reads its file batch by batch and writes its own ``part-<i>.parquet``:
shards never share a file, so only their row counts come back to the driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockgate.core.artifacts import Examples, InferenceResult, PushedModel
from lockgate.core.component import Input, Output, component
from lockgate.core.runners import current_runner
from lockgate.errors import ColumnNotFoundError, ConfigError, ModelError

if TYPE_CHECKING:
    import pyarrow as pa

    from lockgate.serving.servable import PipelineServable

#: The splits ``split="all"`` stands for, in this order.
ALL_SPLITS = ("train", "eval")


@dataclass(frozen=True)
class PushedRef:
    """What a shard needs to load the pushed model itself: small and picklable, so that a
    Ray task loads (and verifies) the model where it runs instead of receiving it."""

    name: str
    version: str
    folder: str
    model_sha256: str
    fingerprint: str | None
    trusted_types: tuple[str, ...] | None

    @classmethod
    def of(cls, pushed: PushedModel | None) -> PushedRef:
        if pushed is None:  # a resolver found no production version
            raise ModelError(
                "bulk_infer has no model: the registry has no production version yet",
                hint="run the training pipeline (its push step) first, or pass a push step's"
                " pushed_model",
            )
        sha256 = pushed.properties.get("model_sha256")
        if not sha256:
            raise ModelError(
                f"pushed model {pushed.uri} has no recorded model_sha256, so it cannot be"
                " verified and is not loaded",
                hint="push the model again with lockgate's push step",
            )
        trusted = pushed.properties.get("trusted_types")
        return cls(
            name=str(pushed.properties.get("model_name", "model")),
            version=f"pushed-{pushed.id}",  # the artifact knows no registry version
            folder=str(pushed.path),
            model_sha256=sha256,
            fingerprint=pushed.fingerprint,
            trusted_types=None if trusted is None else tuple(trusted),
        )

    def load(self) -> PipelineServable:
        """The servable, loaded and verified the way the server loads a version."""
        from lockgate.serving.servable import PipelineServable

        return PipelineServable.load(
            self.name,
            self.version,
            self.folder,
            model_sha256=self.model_sha256,
            fingerprint=self.fingerprint,
            trusted_types=self.trusted_types,
        )


@dataclass(frozen=True)
class Shard:
    """One examples file and the part file its predictions go to."""

    index: int
    split: str
    path: str  # the examples file, read by the shard
    source: str  # its name within the examples artifact, for the properties
    target: str


@component
def bulk_infer(
    examples: Input[Examples],
    model: Input[PushedModel],
    inference: Output[InferenceResult],
    *,
    split: str | list[str] = "eval",
    columns: list[str] | None = None,
    batch_size: int = 65536,
) -> None:
    """Predict every row of ``split`` (a split, a list of them, or ``"all"``) with the
    pushed ``model``; ``columns`` are raw columns copied next to the predictions (an id).

    The outputs are named as the server names them: ``predicted``, and ``probabilities``
    (one list per row, in the order of the ``classes`` property) for a classifier."""
    if batch_size < 1:
        raise ConfigError(f"bulk_infer's batch_size must be at least 1; got {batch_size}")
    ref = PushedRef.of(model)
    servable = ref.load()  # fails here, on the driver, when the model does not verify
    try:
        outputs = [spec.name for spec in servable.outputs]
        classes = list(servable.transform.label_classes) if servable.classification else None
    finally:
        servable.close()
    keep = list(columns or [])
    clash = [name for name in keep if name in outputs]
    if clash:
        raise ConfigError(
            f"bulk_infer's columns {clash} have the names of the model's outputs {outputs}",
            hint="copy them under another name, or leave them out",
        )
    shards = plan_shards(examples, chosen_splits(examples, split), inference.path)
    rows = current_runner().map(lambda shard: infer_file(ref, shard, keep, batch_size), shards)
    inference.properties.update(
        {
            "rows": sum(rows),
            "files": len(shards),
            "splits": sorted({shard.split for shard in shards}),
            "parts": [
                {"file": Path(s.target).name, "split": s.split, "source": s.source, "rows": n}
                for s, n in zip(shards, rows, strict=True)
            ],
            "columns": keep,
            "outputs": outputs,
            "classes": classes,
            "model_name": ref.name,
            "pushed_model_id": model.id,
            "model_fingerprint": model.properties.get("model_fingerprint"),
            "pushed_fingerprint": model.fingerprint,
        }
    )


def chosen_splits(examples: Examples, split: str | list[str]) -> list[str]:
    """The splits ``split`` names: one, a list, or ``"all"`` (those the examples have)."""
    if split == "all":
        return [s for s in ALL_SPLITS if examples.split_path(s).exists()]
    return [split] if isinstance(split, str) else list(split)


def plan_shards(examples: Examples, splits: list[str], folder: Path) -> list[Shard]:
    """One shard per Parquet file of the splits, numbered in split then file order."""
    from lockgate.data.components import split_files

    files = [(split, path) for split in splits for path in split_files(examples, split)]
    return [
        Shard(i, split, str(path), f"{split}/{path.name}", str(folder / f"part-{i}.parquet"))
        for i, (split, path) in enumerate(files)
    ]


def infer_file(ref: PushedRef, shard: Shard, keep: list[str], batch_size: int) -> int:
    """Predict one examples file into its part file; the rows written."""
    import pyarrow.parquet as pq

    servable = ref.load()
    try:
        parquet = pq.ParquetFile(shard.path)
        inputs = [spec.name for spec in servable.inputs]
        check_columns(parquet.schema_arrow.names, [*keep, *inputs], shard, Path(shard.path))
        return write_part(servable, parquet, keep, shard.target, batch_size)
    finally:
        servable.close()


def write_part(
    servable: PipelineServable, parquet: Any, keep: list[str], target: str, batch_size: int
) -> int:
    """Read ``parquet`` batch by batch (memory bounded by ``batch_size``), write each
    batch's answers to ``target``; an empty file still gets a part, with the schema."""
    import pyarrow.parquet as pq

    wanted = list(dict.fromkeys([*keep, *(spec.name for spec in servable.inputs)]))
    schema = part_schema(servable, parquet.schema_arrow, keep)
    rows = 0
    with pq.ParquetWriter(target, schema) as writer:
        for batch in parquet.iter_batches(batch_size=batch_size, columns=wanted):
            if batch.num_rows:
                writer.write_table(predict_batch(servable, batch, keep).cast(schema))
                rows += batch.num_rows
    return rows


def part_schema(servable: PipelineServable, source: pa.Schema, keep: list[str]) -> pa.Schema:
    """The kept columns as the examples type them, then the outputs as the server types
    them (V2 datatypes), so that every part of a result has one schema."""
    import pyarrow as pa

    types = {"FP64": pa.float64(), "INT64": pa.int64(), "BOOL": pa.bool_(), "BYTES": pa.string()}
    fields = [source.field(name) for name in keep]
    for spec in servable.outputs:
        value = types.get(spec.datatype, pa.string())
        if len(spec.shape) == 2:  # probabilities: one value per class
            value = pa.list_(value, spec.shape[1])
        fields.append(pa.field(spec.name, value))
    return pa.schema(fields)


def check_columns(present: list[str], needed: list[str], shard: Shard, path: Path) -> None:
    """Raise ``ColumnNotFoundError`` for the first needed column the file lacks."""
    for name in needed:
        if name not in present:
            raise ColumnNotFoundError(
                name,
                present,
                where=f"examples split '{shard.split}' ({path})",
                hint="the model needs every feature it was trained on, and columns= may"
                " name only columns the examples have",
            )


def predict_batch(servable: PipelineServable, batch: pa.RecordBatch, keep: list[str]) -> pa.Table:
    """The kept raw columns and the servable's outputs for one batch, as one table."""
    import pyarrow as pa

    request = {
        spec.name: request_column(batch, spec.name, spec.datatype) for spec in servable.inputs
    }
    answers = servable.predict(request)
    out: dict[str, pa.Array] = {name: batch.column(name) for name in keep}
    for spec in servable.outputs:
        value = answers[spec.name]
        out[spec.name] = (
            pa.array(list(value), type=pa.list_(pa.float64(), value.shape[1]))
            if value.ndim == 2
            else pa.array(value)
        )
    return pa.table(out)


def request_column(batch: pa.RecordBatch, name: str, datatype: str) -> Any:
    """One input as the server's request decoder hands it to ``predict``: numbers as a
    float array (NaN for missing), anything else as an object array of ``str`` or None."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = batch.column(name)
    if datatype == "BYTES" and not (
        pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    ):
        column = pc.cast(column, pa.string())  # a bool or a date, sent as text
    return column.to_numpy(zero_copy_only=False)
