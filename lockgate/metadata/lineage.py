"""Lineage: why is this model in production? Walk from an artifact back through the
executions that produced it and their inputs, down to the raw input file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lockgate.core.artifacts import Artifact
from lockgate.core.protocols import MetadataStore
from lockgate.core.records import ExecutionRecord


@dataclass
class LineageNode:
    artifact: Artifact
    producer: ExecutionRecord | None
    inputs: dict[str, LineageNode] = field(default_factory=dict)
    seen_before: bool = False  # already printed higher up: the graph is a DAG, not a tree

    def to_dict(self) -> dict[str, Any]:
        node: dict[str, Any] = {
            "artifact_id": self.artifact.id,
            "type": self.artifact.type_name,
            "uri": self.artifact.uri,
            "fingerprint": self.artifact.fingerprint,
            "properties": self.artifact.properties,
        }
        if self.producer is not None:
            node["step"] = self.producer.step_name
            node["execution_id"] = self.producer.id
            node["run_id"] = self.producer.run_id
            node["params"] = self.producer.params
        if self.seen_before:
            node["seen_before"] = True
        else:
            node["inputs"] = {name: child.to_dict() for name, child in self.inputs.items()}
        return node


# Inputs shown in the order a reviewer reads a model's history: the verdict, the model, how
# its features were made, and last the data they all came from.
_ORDER = [
    "blessing",
    "baseline",
    "model",
    "transform",
    "schema",
    "statistics",
    "anomalies",
    "examples",
]
REFERENCE_INPUTS = {"baseline"}


def _reading_order(name: str) -> tuple[int, str]:
    return (_ORDER.index(name) if name in _ORDER else len(_ORDER), name)


def artifact_lineage(store: MetadataStore, artifact: Artifact) -> LineageNode:
    """The artifact and, recursively, the inputs of the execution that produced it: one
    query per artifact on the way."""
    seen: set[int] = set()

    def walk(current: Artifact) -> LineageNode:
        made = store.producer_inputs(current.id) if current.id is not None else None
        producer, parents = made if made is not None else (None, {})
        node = LineageNode(current, producer)
        if current.id in seen:
            node.seen_before = True
            return node
        if current.id is not None:
            seen.add(current.id)
        if producer is not None:
            for name in sorted(parents, key=_reading_order):
                if name in REFERENCE_INPUTS:  # the baseline has a lineage of its own
                    parent = parents[name]
                    origin = store.producer(parent.id) if parent.id is not None else None
                    node.inputs[name] = LineageNode(parent, origin, seen_before=True)
                else:
                    node.inputs[name] = walk(parents[name])
        return node

    return walk(artifact)
