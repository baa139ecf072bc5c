"""Artifacts: the immutable, typed outputs that flow between steps.

An artifact is a folder on disk plus a row in the metadata store::

    <artifact root>/<pipeline>/<step>/<output>/<execution id>/   <- uri
        ...files the component wrote...

``properties`` hold small JSON facts (row counts, metrics, a model's sha256) and
``fingerprint`` is the sha256 over the folder's files, which is what the cache keys on.

``uri`` is where the store keeps the artifact: a folder path on the local store, a URL
(``s3://...``) on a shared one. Code reads and writes the artifact's files through ``path``,
a local folder, never by joining paths on ``uri``: the launcher stages outputs in a local
folder and hands inputs over as local working copies (``local_path``); elsewhere ``path``
asks the store for one (``core.artifact_store.local_copy``: the folder itself when local).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar


@dataclass
class Artifact:
    """An artifact handed to or produced by a component.

    A component reads the files under ``path`` of its inputs and writes under ``path`` of
    its outputs; it may also set ``properties``. ``id`` and ``fingerprint`` are filled in by
    the launcher. ``local_path`` (never stored) is the local folder the launcher prepared.
    """

    TYPE_NAME: ClassVar[str] = "Artifact"

    uri: str = ""
    properties: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    fingerprint: str | None = None
    local_path: str | None = field(default=None, repr=False, compare=False)

    @property
    def path(self) -> Path:
        """The artifact's files as a local folder (read-only for a published artifact)."""
        if self.local_path is None:
            from lockgate.core.artifact_store import local_copy

            self.local_path = str(local_copy(self.uri, self.fingerprint))
        return Path(self.local_path)

    @property
    def type_name(self) -> str:
        return self.TYPE_NAME


class Examples(Artifact):
    """Examples as Parquet, one folder per split::

        train/part-0.parquet
        eval/part-0.parquet

    properties: ``splits`` {name: rows}, ``span``, ``source`` (path), ``source_fingerprint``.
    """

    TYPE_NAME = "Examples"

    def split_path(self, split: str) -> Path:
        return self.path / split


class Statistics(Artifact):
    """Per-feature statistics, one JSON file per split: ``train.json``, ``eval.json``."""

    TYPE_NAME = "Statistics"


class Schema(Artifact):
    """The schema as readable YAML: ``schema.yaml``."""

    TYPE_NAME = "Schema"


class Anomalies(Artifact):
    """What validation found: ``anomalies.json`` (a list of anomalies per split)."""

    TYPE_NAME = "Anomalies"


class TransformGraph(Artifact):
    """The fitted transform, portable JSON: ``transform.json``."""

    TYPE_NAME = "TransformGraph"


class Model(Artifact):
    """A trained model in a safe format: ``model.txt`` or ``model.skops``, and ``model.json``.

    properties: ``framework``, ``sha256`` of the model file, ``spec``.
    """

    TYPE_NAME = "Model"


class HyperParameters(Artifact):
    """The parameters a tuner chose, for ``train(hyperparameters=...)``::

        hyperparameters.json   {"params": {...}, "metric": ..., "best_value": ..., ...}

    properties: ``params`` (the best trial's), ``metric``, ``best_value``, ``trials``.
    """

    TYPE_NAME = "HyperParameters"

    FILE_NAME: ClassVar[str] = "hyperparameters.json"


class ModelEvaluation(Artifact):
    """Metrics overall and per slice, and the baseline's: ``evaluation.json``."""

    TYPE_NAME = "ModelEvaluation"


class Blessing(Artifact):
    """The evaluator's verdict: ``blessing.json``; properties ``blessed`` (bool)."""

    TYPE_NAME = "Blessing"


class InfraBlessing(Artifact):
    """The infra-validator's verdict on a candidate served by a real ``lockgate serve``::

        infra_blessing.json   {"blessed", "checks": [...], "reasons": [...],
                               "load_time_s", "p50_ms", "p99_ms", "peak_rss_mb"}

    properties: ``blessed`` (bool), ``reasons``.
    """

    TYPE_NAME = "InfraBlessing"

    FILE_NAME: ClassVar[str] = "infra_blessing.json"


class PushedModel(Artifact):
    """A servable: the transform and the model side by side, as the server loads them::

        transform/transform.json
        model/model.txt | model/model.skops, model/model.json

    properties: ``model_name``, ``version``, ``model_sha256``.
    """

    TYPE_NAME = "PushedModel"


class InferenceLog(Artifact):
    """Sampled serving requests and answers as Parquet, read back for skew checks."""

    TYPE_NAME = "InferenceLog"


class InferenceResult(Artifact):
    """A pushed model's answers for the rows of an Examples artifact (``bulk_infer``), one
    part per examples file, the copied raw columns first, then the server's outputs::

        part-0.parquet   id, ..., predicted, probabilities (classification)
        part-1.parquet   id, ..., predicted                (regression)

    properties: ``rows``, ``files``, ``parts`` [{file, split, source, rows}], ``columns``,
    ``outputs``, ``classes`` (the order of ``probabilities``), ``model_name``,
    ``pushed_model_id``, ``model_fingerprint`` (the trained Model's), ``pushed_fingerprint``.
    """

    TYPE_NAME = "InferenceResult"


ARTIFACT_TYPES: dict[str, type[Artifact]] = {
    cls.TYPE_NAME: cls
    for cls in (
        Artifact,
        Examples,
        Statistics,
        Schema,
        Anomalies,
        TransformGraph,
        Model,
        HyperParameters,
        ModelEvaluation,
        Blessing,
        InfraBlessing,
        PushedModel,
        InferenceLog,
        InferenceResult,
    )
}


def artifact_class(type_name: str) -> type[Artifact]:
    """The class for a type name stored in the metadata store."""
    return ARTIFACT_TYPES.get(type_name, Artifact)
