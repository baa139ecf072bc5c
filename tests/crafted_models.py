"""Crafted model files for the model-safety tests, written by hand as an attacker would.

skops rebuilds an object by calling what its ``schema.json`` names, with arguments from the
file. Each payload here writes a marker file when a loader lets it run; the tests check that
the marker is never there. ``register_pushed`` puts a crafted model in the registry the way
someone with write access to the store and the artifact root could: files and fingerprints
all consistent, so only the type check stands between the file and the server.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from support import publish_pushed_model

RUNSTRING = ("numpy.testing._private.utils", "runstring")  # exec() under a numpy name


def write_marker(path: str) -> None:
    """A function that does something when called, and that no allowlist names."""
    Path(path).write_text("ran")


def data(n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = np.column_stack([38.0 + 5.0 * y + rng.normal(0, 1.5, n), 190.0 + 12.0 * y])
    return X, y


# -- skops schema nodes -------------------------------------------------------------------


def json_node(value: Any) -> dict[str, Any]:
    return {
        "__class__": "str",
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(value),
        "is_json": True,
    }


def type_node(module: str, name: str) -> dict[str, Any]:
    return {"__class__": name, "__module__": module, "__loader__": "TypeNode"}


def function_node(module: str, name: str) -> dict[str, Any]:
    return {"__class__": name, "__module__": module, "__loader__": "FunctionNode"}


def tuple_node(*items: dict[str, Any]) -> dict[str, Any]:
    return {
        "__class__": "tuple",
        "__module__": "builtins",
        "__loader__": "TupleNode",
        "content": list(items),
    }


def list_node(*items: dict[str, Any]) -> dict[str, Any]:
    return {
        "__class__": "list",
        "__module__": "builtins",
        "__loader__": "ListNode",
        "content": list(items),
    }


def dict_node(content: dict[str, Any], key_type: tuple[str, str] = ("builtins", "str")) -> Any:
    return {
        "__class__": "dict",
        "__module__": "builtins",
        "__loader__": "DictNode",
        "content": content,
        "key_types": list_node(*(type_node(*key_type) for _ in content)),
    }


def reduce_node(module: str, name: str, *args: dict[str, Any]) -> dict[str, Any]:
    """skops' ConstructorFromReduceNode: ``module.name(*args)`` while the file loads."""
    return {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": tuple_node(*args),
    }


def code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('ran')"


# -- the crafted files ----------------------------------------------------------------------


class _Exec:
    def __init__(self, source: str) -> None:
        self.source = source

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (self.source,))


def _payload(kind: str, marker: Path, folder: Path) -> dict[str, Any]:
    if kind == "runstring_reduce":  # a code runner under the trusted-looking numpy prefix
        return reduce_node(*RUNSTRING, json_node(code(marker)), dict_node({}))
    if kind == "numpy_load_pickle":  # numpy.load(file, None, allow_pickle=True)
        pickled = folder / "payload.npy"
        pickled.write_bytes(pickle.dumps(_Exec(code(marker))))
        return reduce_node(
            "numpy", "load", json_node(str(pickled)), json_node(None), json_node(True)
        )
    if kind == "operator_call":  # operator.call(write_marker, marker), a methodcaller beside
        return dict_node(
            {
                "call": reduce_node(
                    "operator",
                    "call",
                    function_node("crafted_models", "write_marker"),
                    json_node(str(marker)),
                ),
                "caller": {
                    "__class__": "methodcaller",
                    "__module__": "operator",
                    "__loader__": "OperatorFuncNode",
                    "attrs": tuple_node(json_node("write_text"), json_node("ran")),
                },
            }
        )
    if kind == "builtins_exec":
        return reduce_node("builtins", "exec", json_node(code(marker)))
    if kind == "builtins_getattr_chain":  # list(map(getattr(Path(marker), "write_text"), ...))
        method = reduce_node(
            "builtins",
            "getattr",
            reduce_node("pathlib", "Path", json_node(str(marker))),
            json_node("write_text"),
        )
        calls = reduce_node("builtins", "map", method, list_node(json_node("ran")))
        return reduce_node("builtins", "list", calls)
    if kind == "exec_as_dict_key_type":  # a DictNode builds its keys by calling their type
        return dict_node({code(marker): json_node(1)}, key_type=("builtins", "exec"))
    if kind == "exec_as_loss_constructor":  # a reduce node whose constructor is exec
        return {
            "__class__": "exec",
            "__module__": "builtins",
            "__loader__": "LossNode",
            "__reduce__": {"args": tuple_node(json_node(code(marker)))},
            "content": dict_node({}),
        }
    raise ValueError(kind)


#: Each crafted file, and the names its refusal must list.
CRAFTED = {
    "runstring_reduce": ["numpy.testing._private.utils.runstring"],
    "numpy_load_pickle": ["numpy.load"],
    "operator_call": ["crafted_models.write_marker", "operator.call", "operator.methodcaller"],
    "builtins_exec": ["builtins.exec"],
    "builtins_getattr_chain": ["builtins.getattr", "builtins.map", "pathlib.Path"],
    "exec_as_dict_key_type": ["builtins.exec"],
    "exec_as_loss_constructor": ["builtins.exec"],
    "payload_in_forest": ["numpy.testing._private.utils.runstring"],
}


def write_skops(path: Path, schema: dict[str, Any], files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
        archive.writestr("schema.json", json.dumps({**schema, "protocol": 2}))
    return path


def read_skops(path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        files = {n: archive.read(n) for n in archive.namelist() if n != "schema.json"}
        return json.loads(archive.read("schema.json")), files


def forest_with_payload(path: Path, marker: Path) -> Path:
    """A real, fitted random forest (it predicts well) with a payload in one tree's
    attributes, where nothing looks at it."""
    import skops.io
    from sklearn.ensemble import RandomForestClassifier

    X, y = data()
    skops.io.dump(RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y), path)
    schema, files = read_skops(path)
    tree = schema["content"]["content"]["estimators_"]["content"][2]["content"]
    tree["content"]["_cache"] = reduce_node(*RUNSTRING, json_node(code(marker)), dict_node({}))
    tree["key_types"]["content"].append(type_node("builtins", "str"))
    return write_skops(path, schema, files)


def craft(kind: str, folder: Path, marker: Path) -> Path:
    """``folder/<kind>.skops``, whose payload writes ``marker`` if a loader runs it."""
    path = folder / f"{kind}.skops"
    if kind == "payload_in_forest":
        return forest_with_payload(path, marker)
    return write_skops(path, _payload(kind, marker, folder), {})


# -- a crafted version in the registry ------------------------------------------------------


def pushed_folder(target: Path, model_file: Path, features: list[str], classes: list[str]) -> Path:
    """A PushedModel folder as a push writes it, holding ``model_file`` as its model."""
    import pyarrow as pa

    from lockgate.training.model_files import META_FILE, ModelFileInfo, file_sha256
    from lockgate.training.transform import TransformGraph

    X, y = data()
    table = pa.table(
        {**{f: X[:, i] for i, f in enumerate(features)}, "label": np.array(classes)[y]}
    )
    TransformGraph.fit(table, label="label", features=features).save(target / "transform")
    model = target / "model"
    model.mkdir(parents=True)
    copied = model / "model.skops"
    copied.write_bytes(model_file.read_bytes())
    info = ModelFileInfo(
        "sklearn", copied.name, file_sha256(copied), "classification", 2, [0, 1, 2]
    )
    (model / META_FILE).write_text(json.dumps(info.to_dict()))
    return target


def register_pushed(store: Any, folder: Path, name: str, **properties: Any) -> Any:
    """Register ``folder`` as a PushedModel and a new version of ``name``, with a correct
    fingerprint and sha256: what write access to the store allows."""
    from lockgate.core.artifacts import PushedModel
    from lockgate.core.fingerprint import path_fingerprint
    from lockgate.metadata.registry import Registry
    from lockgate.training.model_files import file_sha256

    pushed = PushedModel(
        uri=str(folder),
        properties={
            "model_name": name,
            "model_sha256": file_sha256(folder / "model" / "model.skops"),
            "model_fingerprint": path_fingerprint(folder / "model"),
            "framework": "sklearn",
            **properties,
        },
        fingerprint=path_fingerprint(folder),
    )
    publish_pushed_model(store, pushed, pipeline="crafted")
    return Registry(store).register(name, pushed, blessed=True, properties=dict(properties))
