"""The one publish path: stage, write, fingerprint, publish, register.

The launcher, the request log and ``models import`` all publish through ``Publication``,
so every artifact gets the same guarantees from any ``ArtifactStore``: files are written
into local staging folders, fingerprinted there, published whole (an atomic rename, or an
upload whose marker comes last), and only then registered in the metadata store. A failure
anywhere discards what was staged and what was published but not registered; a crash
leaves what the store's ``sweep`` removes::

    publication = Publication(artifacts, pipeline="p", step="s")
    examples = publication.stage("examples", Examples)      # write under examples.path
    publication.publish(execution_id, register=lambda outputs: store.publish_execution(...))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from lockgate.core.artifacts import Artifact
from lockgate.core.fingerprint import path_fingerprint
from lockgate.core.protocols import ArtifactStore

A = TypeVar("A", bound=Artifact)


class Publication:
    """The outputs of one execution on their way from staging into the store."""

    def __init__(self, artifacts: ArtifactStore, *, pipeline: str, step: str) -> None:
        self.artifacts = artifacts
        self.pipeline = pipeline
        self.step = step
        self.outputs: dict[str, Artifact] = {}
        self._staging: dict[str, Path] = {}
        self._published: list[str] = []  # in place, not yet registered

    def stage(self, name: str, artifact_type: type[A]) -> A:
        """A new output whose ``path`` is a fresh local staging folder."""
        staging = self.artifacts.staging_dir(self.step, name)
        self._staging[name] = staging
        artifact = artifact_type(uri=str(staging), local_path=str(staging))
        self.outputs[name] = artifact
        return artifact

    def publish(
        self,
        key: int | str,
        register: Callable[[dict[str, Artifact]], None] | None = None,
    ) -> dict[str, Artifact]:
        """Fingerprint and publish every output at ``<pipeline>/<step>/<output>/<key>``,
        then ``register`` them (the metadata store's transaction); on any failure remove
        what was published and re-raise."""
        try:
            for name, artifact in self.outputs.items():
                staging = self._staging.pop(name)
                artifact.fingerprint = path_fingerprint(staging)
                uri = self.artifacts.uri_for(self.pipeline, self.step, name, str(key))
                self._published.append(uri)
                artifact.uri = self.artifacts.publish(
                    staging, uri, fingerprint=artifact.fingerprint
                )
                artifact.local_path = str(self.artifacts.local_copy(uri, artifact.fingerprint))
            if register is not None:
                register(self.outputs)
        except BaseException:
            self.discard()
            raise
        self._published.clear()
        return self.outputs

    def discard(self) -> None:
        """Remove the staging folders and what was published but not registered."""
        targets: list[Path | str] = [*self._staging.values(), *self._published]
        for target in targets:
            self.artifacts.discard(target)
        self._staging.clear()
        self._published.clear()


def is_published(artifacts: ArtifactStore, uri: str) -> bool:
    """Whether a whole artifact is at ``uri``: asked of ``artifacts`` when it lives there,
    else of the store its URI names (a cache hit from before the root changed)."""
    from lockgate.core.artifact_store import local_path_of

    if uri.startswith(artifacts.root):
        return artifacts.exists(uri)
    local = local_path_of(uri)
    if local is not None:
        return local.exists()
    from lockgate.core.fsspec_store import reader_for

    return reader_for(uri).exists(uri)


def working_copy(artifacts: ArtifactStore, artifact: A) -> A:
    """``artifact`` with ``local_path`` set to a local folder of its files: what a component
    reads. The store's own copy when the artifact lives there, else (an artifact published
    under an earlier root) whichever store its URI names."""
    from lockgate.core.artifact_store import local_copy

    if artifact.uri.startswith(artifacts.root):
        folder = artifacts.local_copy(artifact.uri, artifact.fingerprint)
    else:
        folder = local_copy(artifact.uri, artifact.fingerprint)
    return dataclasses.replace(artifact, local_path=str(folder))
