"""LightGBM's parser crashes the process on a truncated or crafted text model (it trusts
``tree_sizes`` and the trees' indices); lockgate reads the text first and refuses such a
file with an error naming it. Each load runs in a child process, so a crash is seen as
one instead of taking the test run down."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from support import answers_in_child, lockgate

from lockgate.training.model_files import save_model
from lockgate.training.trainers import train_model

LOAD = """
import sys
from pathlib import Path
from lockgate.errors import ModelError
from lockgate.training.frameworks import get_framework
for name in sys.argv[1:]:
    path = Path(name)
    try:
        get_framework("lightgbm").load(path.read_bytes(), path, trusted=())
        print("LOADED", flush=True)
    except ModelError as exc:
        print("REFUSED", exc.message.replace(chr(10), " "), flush=True)
"""


@pytest.fixture(scope="module")
def model_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    folder = tmp_path_factory.mktemp("lgbm")
    estimator = train_model(
        X, y, spec="lightgbm", task="classification", params={"n_estimators": 8}
    )
    info = save_model(estimator, folder)
    return (folder / info.file).read_text()


def load_in_child(text: str, path: Path) -> str:
    return load_all_in_child({path: text})[0]


def load_all_in_child(files: dict[Path, str]) -> list[str]:
    """Each file loaded by LightGBM's framework in one child process, one answer a line."""
    return answers_in_child(LOAD, {path: text.encode() for path, text in files.items()})


def test_the_saved_model_passes(model_text: str, tmp_path: Path) -> None:
    assert load_in_child(model_text, tmp_path / "model.txt") == "LOADED"


def test_a_model_cut_in_its_trees_is_refused_not_a_crash(model_text: str, tmp_path: Path) -> None:
    end = model_text.index("end of trees")
    cuts = {tmp_path / f"cut{i}.txt": model_text[: int(end * f)] for i, f in enumerate(FRACTIONS)}
    for path, answer in zip(cuts, load_all_in_child(cuts), strict=True):
        assert answer.startswith(f"REFUSED {path} is not a readable LightGBM model"), answer


def test_a_model_cut_after_its_trees_loads_without_the_parameters_lightgbm_crashes_on(
    model_text: str, tmp_path: Path
) -> None:
    """Feature importances and parameters follow the trees; LightGBM segfaults on a cut
    parameters line, lockgate reads the model without them."""
    end = model_text.index("end of trees")
    tail = len(model_text) - end
    cuts = {
        tmp_path / f"cut{i}.txt": model_text[: end + int(tail * f)] for i, f in enumerate(FRACTIONS)
    }
    assert load_all_in_child(cuts) == ["LOADED"] * len(FRACTIONS)


FRACTIONS = [0.05, 0.2, 0.3, 0.5, 0.6, 0.77, 0.95, 0.99]


def crafted(text: str, tree: int, key: str, value: str) -> str:
    """``text`` with one field of one tree replaced, ``tree_sizes`` fixed to match."""
    start = text.index(f"Tree={tree}\n")
    end = text.index("\n\n\n", start) + 3
    block = re.sub(rf"(?m)^{key}=.*$", f"{key}={value}", text[start:end])
    text = text[:start] + block + text[end:]
    sizes = re.search(r"(?m)^tree_sizes=(.*)$", text)
    assert sizes is not None
    numbers = sizes.group(1).split()
    numbers[tree] = str(len(block))
    return text.replace(sizes.group(0), "tree_sizes=" + " ".join(numbers))


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("left_child", "", "children do not form one tree"),
        ("right_child", "", "children do not form one tree"),
        ("split_feature", "", "splits on a feature outside 0..3"),
        ("leaf_value", "0.5", "leaf_value value(s), expected"),
        ("num_leaves", "LEAVES", "leaf_value value(s), expected"),
    ],
)
def test_a_crafted_tree_is_refused_naming_what_is_wrong(
    model_text: str, tmp_path: Path, key: str, value: str, said: str
) -> None:
    tree = 0
    leaves = int(re.search(r"Tree=0\nnum_leaves=(\d+)", model_text).group(1))  # type: ignore[union-attr]
    value = value.replace("LEAVES", str(leaves + 1))
    value = {
        "left_child": " ".join(["5"] * (leaves - 1)),
        "right_child": " ".join(["0"] * (leaves - 1)),
        "split_feature": " ".join(["9"] * (leaves - 1)),
    }.get(key, value)
    said = said.replace("LEAVES", str(leaves))
    answer = load_in_child(crafted(model_text, tree, key, value), tmp_path / "model.txt")
    assert answer.startswith("REFUSED") and said in answer, answer


def test_tree_sizes_that_lie_are_refused(model_text: str, tmp_path: Path) -> None:
    lying = re.sub(
        r"(?m)^tree_sizes=(\d+)", lambda m: f"tree_sizes={int(m.group(1)) + 40}", model_text
    )
    answer = load_in_child(lying, tmp_path / "model.txt")
    assert "not where tree_sizes puts it" in answer, answer


def test_models_import_of_a_truncated_file_names_the_users_file(
    model_text: str, tmp_path: Path
) -> None:
    assert lockgate("init", "proj", cwd=tmp_path).returncode == 0
    source = tmp_path / "half.txt"
    source.write_text(model_text[: len(model_text) // 2])
    done = lockgate(
        "models",
        "import",
        str(source),
        "--name",
        "half",
        "--features",
        "a,b,c,d",
        "--project",
        "proj",
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{source} is not a readable LightGBM model" in done.stderr
    assert "Traceback" not in done.stderr and ".tmp" not in done.stderr
