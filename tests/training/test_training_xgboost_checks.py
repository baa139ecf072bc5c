"""XGBoost crashes the process on a crafted tree (a child or a split feature out of range)
when it loads or predicts; lockgate reads the JSON or UBJ first and refuses such a file
with an error naming it. Loads run in one child process, so a crash fails the test
instead of ending the run."""

from __future__ import annotations

import copy
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import answers_in_child

from lockgate.training.model_files import save_model
from lockgate.training.trainers import train_model

LOAD = """
import sys
import numpy as np
from pathlib import Path
from lockgate.errors import ModelError
from lockgate.training.frameworks import get_framework
framework = get_framework("xgboost")
for name in sys.argv[1:]:
    path = Path(name)
    try:
        model = framework.load(path.read_bytes(), path, trusted=())
        framework.predict_proba(model, np.zeros((3, model.num_features())))
        print("LOADED", flush=True)
    except ModelError as exc:
        print("REFUSED", exc.message.replace(chr(10), " "), flush=True)
"""


def load_all_in_child(files: dict[Path, bytes]) -> list[str]:
    return answers_in_child(LOAD, files)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """XGBoost JSON models: binary, multiclass (3 classes), a dart booster, regression."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    made = {}
    cases = {
        "binary": ((X[:, 0] > 0).astype(np.int64), "classification", {}),
        "multiclass": (np.digitize(X[:, 1], [-0.5, 0.5]), "classification", {}),
        "dart": ((X[:, 2] > 0).astype(np.int64), "classification", {"booster": "dart"}),
        "regression": (X[:, 0] * 2 + X[:, 3], "regression", {}),
    }
    for name, (y, task, extra) in cases.items():
        folder = tmp_path_factory.mktemp(name)
        params = {"n_estimators": 4, "max_depth": 3, **extra}
        info = save_model(train_model(X, y, spec="xgboost", task=task, params=params), folder)
        made[name] = json.loads((folder / info.file).read_text())
    return made


def ubj(model: dict[str, Any], tmp_path: Path) -> bytes:
    """The same model in XGBoost's own UBJ encoding."""
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(bytearray(json.dumps(model).encode()))
    path = tmp_path / "converted.ubj"
    booster.save_model(str(path))
    return path.read_bytes()


def trees(model: dict[str, Any]) -> list[dict[str, Any]]:
    booster = model["learner"]["gradient_booster"]
    booster = booster.get("gbtree", booster)
    return booster["model"]["trees"]


def test_real_models_pass_as_json_and_as_ubj(
    models: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    files = {tmp_path / f"{name}.json": json.dumps(m).encode() for name, m in models.items()}
    files |= {tmp_path / f"{name}.ubj": ubj(m, tmp_path) for name, m in models.items()}
    assert load_all_in_child(files) == ["LOADED"] * len(files)


def crafted(model: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(model)
    tree = trees(changed)[1]
    tree[key] = value(tree[key]) if callable(value) else value
    return changed


CRAFTS = {
    "child out of range": ("left_children", lambda v: [10_000_000, *v[1:]], "do not form one tree"),
    "child loops to the root": ("left_children", lambda v: [0, *v[1:]], "do not form one tree"),
    "feature out of range": ("split_indices", lambda v: [99_999, *v[1:]], "outside 0..3"),
    "short array": ("split_conditions", lambda v: v[:-1], "split_conditions value(s), expected"),
    "one child": ("right_children", lambda v: [-1, *v[1:]], "a node with one child"),
}


@pytest.mark.parametrize("encoding", ["json", "ubj"])
def test_crafted_trees_are_refused_naming_what_is_wrong(
    models: dict[str, dict[str, Any]], tmp_path: Path, encoding: str
) -> None:
    files = {}
    for index, (key, change, _) in enumerate(CRAFTS.values()):
        model = crafted(models["binary"], key, change)
        data = json.dumps(model).encode() if encoding == "json" else None
        if data is None:  # XGBoost refuses to write some of these itself: encode them by hand
            data = _ubj_by_hand(model)
        files[tmp_path / f"crafted{index}.{encoding}"] = data
    answers = load_all_in_child(files)
    for (path, answer), (_, _, said) in zip(
        zip(files, answers, strict=True), CRAFTS.values(), strict=True
    ):
        assert answer.startswith(f"REFUSED {path} is not a readable XGBoost model"), answer
        assert said in answer, answer


def test_truncated_files_are_refused(models: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    text = json.dumps(models["multiclass"]).encode()
    binary = ubj(models["multiclass"], tmp_path)
    files = {
        tmp_path / f"cut{i}.{kind}": data[: int(len(data) * f)]
        for i, f in enumerate((0.1, 0.5, 0.9, 0.999))
        for kind, data in (("json", text), ("ubj", binary))
    }
    assert all(a.startswith("REFUSED") for a in load_all_in_child(files))


def _ubj_by_hand(value: Any) -> bytes:
    """UBJ as XGBoost writes it: int64 lengths and counts, typed number arrays."""

    def key(text: str) -> bytes:
        raw = text.encode()
        return b"L" + struct.pack(">q", len(raw)) + raw

    if isinstance(value, dict):
        return b"{" + b"".join(key(k) + _ubj_by_hand(v) for k, v in value.items()) + b"}"
    if isinstance(value, list):
        if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return b"[$L#L" + struct.pack(">q", len(value)) + struct.pack(f">{len(value)}q", *value)
        if value and all(isinstance(v, float) for v in value):
            return b"[$d#L" + struct.pack(">q", len(value)) + struct.pack(f">{len(value)}f", *value)
        return b"[#L" + struct.pack(">q", len(value)) + b"".join(_ubj_by_hand(v) for v in value)
    if isinstance(value, bool):
        return b"T" if value else b"F"
    if isinstance(value, int):
        return b"L" + struct.pack(">q", value)
    if isinstance(value, float):
        return b"D" + struct.pack(">d", value)
    if value is None:
        return b"Z"
    return (
        b"S"
        + key(str(value))[0:0]
        + b"L"
        + struct.pack(">q", len(str(value).encode()))
        + str(value).encode()
    )
