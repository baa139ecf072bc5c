"""What an ONNX model may ask of onnxruntime, checked on the parsed graph before a session
exists.

- Operators only from the domains compiled into onnxruntime: the standard ``""`` /
  ``ai.onnx`` and ``ai.onnx.ml``, and onnxruntime's own contrib kernels ``com.microsoft``
  (fused and quantised versions of standard operators that converters and onnxruntime's
  optimiser emit; they ship inside onnxruntime, so no library is loaded for them). Any
  other domain needs a custom-operator library, which is native code from elsewhere;
  lockgate never registers one, and refuses the model up front with the reason.
  Functions defined inside the model are allowed: their bodies are checked the same way.
- No tensor with external data: onnxruntime would open the file that the model names,
  relative to the model's folder, which a crafted model points at ``../../`` anything.
  The session is also built from the checked bytes, not a path, so nothing is resolved.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from lockgate.errors import ModelError

#: Operator domains whose kernels ship inside onnxruntime.
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})


def parse_checked(data: bytes, path: Path) -> Any:
    """The ModelProto of ``data``, refused when it uses an operator domain outside
    ``ALLOWED_DOMAINS`` or a tensor stored outside the file."""
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # noqa: BLE001 - protobuf raises its own untyped errors
        raise ModelError(f"{path} is not an ONNX model: {exc}", path=str(path)) from exc
    local = {(f.domain, f.name) for f in model.functions}
    domains = {o.domain for o in model.opset_import}
    for function in model.functions:
        domains.update(o.domain for o in function.opset_import)
    for node in _nodes(model):
        if (node.domain, node.op_type) not in local:
            domains.add(node.domain)
    custom = sorted(domains - ALLOWED_DOMAINS)
    if custom:
        raise ModelError(
            f"{path} uses operators from {custom}, which need a custom-operator library (native"
            f" code) that lockgate never loads; allowed are {sorted(ALLOWED_DOMAINS)}",
            path=str(path),
            hint="export the model with standard ONNX operators only",
        )
    external = sorted({t.name or "(unnamed)" for t in _tensors(model) if _is_external(t)})
    if external:
        raise ModelError(
            f"{path} keeps tensors {external[:5]} in external files; onnxruntime would read"
            " whatever file the model names, so lockgate loads only self-contained models",
            path=str(path),
            hint="save it as one file: onnx.save_model(model, 'model.onnx',"
            " save_as_external_data=False)",
        )
    return model


def _graphs(model: Any) -> Iterator[Any]:
    """The main graph and every subgraph (If, Loop, Scan bodies) below it."""
    stack = [model.graph]
    while stack:
        graph = stack.pop()
        yield graph
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.HasField("g"):
                    stack.append(attribute.g)
                stack.extend(attribute.graphs)


def _nodes(model: Any) -> Iterator[Any]:
    for graph in _graphs(model):
        yield from graph.node
    for function in model.functions:
        yield from function.node


def _tensors(model: Any) -> Iterator[Any]:
    for graph in _graphs(model):
        yield from graph.initializer
        yield from _sparse_parts(graph.sparse_initializer)
    for node in _nodes(model):
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("sparse_tensor"):
                yield from _sparse_parts([attribute.sparse_tensor])
            yield from _sparse_parts(attribute.sparse_tensors)


def _sparse_parts(sparse: Iterable[Any]) -> Iterator[Any]:
    for tensor in sparse:
        yield tensor.values
        yield tensor.indices


def _is_external(tensor: Any) -> bool:
    import onnx

    return tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data) > 0
