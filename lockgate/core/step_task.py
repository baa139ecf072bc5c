"""The unit a runner executes for one step, on whatever node it lands: materialise the
inputs, run the component, fingerprint and publish its outputs to the artifact store.

Only registration stays on the driver (``Launcher``), because only the driver holds the
metadata store. So a step never reads or writes a folder of the driver's: it opens the
artifact store by address (``ArtifactStoreAddress``), takes working copies of inputs that
are not on its node, stages outputs in its own node's staging session and publishes from
there (a rename on the local store, an upload whose marker comes last on fsspec). The
local runner calls the very same ``run_step`` in-process, where the address opens the
driver's own store: no copy more than before.

A worker that dies mid-step returns nothing, so nothing is registered; what it published
lies under URIs the driver knows (``output_uris``) and discards, and its staging session
is swept once its lock is free. A retry stages afresh: it starts from empty outputs::

    outcome = runner.execute(run_step, task, project_dir=...)   # anywhere
    store.publish_execution(execution_id, outcome.outputs)      # on the driver
"""

from __future__ import annotations

import dataclasses
import traceback
from dataclasses import dataclass
from typing import Any

from lockgate.core.artifact_store import ArtifactStoreAddress
from lockgate.core.artifacts import Artifact
from lockgate.core.component import Component, execute_component
from lockgate.core.protocols import ArtifactStore
from lockgate.core.publish import Publication, working_copy
from lockgate.errors import GateClosedError


@dataclass(frozen=True)
class StepTask:
    """Everything a step needs away from the driver, all of it picklable."""

    component: Component
    inputs: dict[str, Artifact | None]
    params: dict[str, Any]
    artifacts: ArtifactStoreAddress
    pipeline: str
    step: str
    key: str  # the execution id: the outputs' URIs end in it


@dataclass
class StepOutcome:
    """Published, unregistered outputs (URI, fingerprint, properties) and, when a gate
    closed but kept its findings, that gate's error and its message for the store."""

    outputs: dict[str, Artifact]
    gate: GateClosedError | None = None
    gate_message: str = ""


def run_step(task: StepTask, *, project_dir: str | None = None) -> StepOutcome:
    """Run ``task`` here and publish its outputs; on any error discard what it staged or
    published and re-raise (a closed gate that keeps its findings publishes them)."""
    artifacts = task.artifacts.open()
    inputs = {n: None if a is None else on_this_node(artifacts, a) for n, a in task.inputs.items()}
    publication = Publication(artifacts, pipeline=task.pipeline, step=task.step)
    try:
        outputs: dict[str, Artifact] = {
            name: publication.stage(name, marker.artifact_type)
            for name, marker in task.component.outputs.items()
        }
        gate, message, properties = _execute(task, inputs, outputs, project_dir)
        for name, artifact in outputs.items():
            artifact.properties = properties[name]
        published = publication.publish(task.key)
    except BaseException:
        publication.discard()
        raise
    return StepOutcome({n: _portable(a) for n, a in published.items()}, gate, message)


def _execute(
    task: StepTask,
    inputs: dict[str, Artifact | None],
    outputs: dict[str, Artifact],
    project_dir: str | None,
) -> tuple[GateClosedError | None, str, dict[str, dict[str, Any]]]:
    """The component's call: (None, "", properties), or a closed gate that keeps its
    findings as (error, message, properties); any other error propagates."""
    try:
        return (
            None,
            "",
            execute_component(
                task.component, inputs, outputs, task.params, project_dir=project_dir
            ),
        )
    except GateClosedError as exc:
        if not exc.publish_outputs:
            raise
        message = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        return exc, message, exc.output_properties or {n: a.properties for n, a in outputs.items()}


def on_this_node(artifacts: ArtifactStore, artifact: Artifact) -> Artifact:
    """``artifact`` with ``local_path`` set to a folder of its files on this node: the
    folder itself on the local store, this node's cached copy, or a download made now."""
    return working_copy(artifacts, artifact)


def _portable(artifact: Artifact) -> Artifact:
    """``artifact`` without its ``local_path``: a folder of this node means nothing on
    another, which asks the store for its own copy (``Artifact.path``, ``on_this_node``)."""
    return dataclasses.replace(artifact, local_path=None)


def output_uris(artifacts: ArtifactStore, task: StepTask) -> list[str]:
    """Where ``task`` publishes its outputs: what the driver discards when the step failed
    or its registration did, wherever the step ran."""
    return [
        artifacts.uri_for(task.pipeline, task.step, name, task.key)
        for name in task.component.outputs
    ]
