import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from lockgate.data.split import hash_strings, split_table, stable_row_hash
from lockgate.errors import ColumnNotFoundError, ConfigError

TINY = {"a": [1, 2, None], "b": ["x", "", "héllo"], "c": [1.5, None, -0.25]}


def _tiny() -> pa.Table:
    return pa.table(TINY)


def test_lists_hash_as_the_sequence_of_their_values() -> None:
    # Pinned as above: a list column's rows keep their side of the split across releases.
    hashes = hash_strings(pa.array([[1, 2], [2, 1], [12], [], None, [None]])).tolist()
    assert hashes == [
        7711065078207535243,
        16167684966942256812,
        1504797626739958637,
        9726185278023919352,
        7640891576956012808,  # a null list: the null hash
        7948190419083125562,
    ]
    assert hash_strings(pa.array([["1", "2"]])).tolist() == hashes[:1]  # by the text form
    fixed = pa.array([[1, 2]], pa.list_(pa.int64(), 2))
    assert hash_strings(fixed).tolist() == hashes[:1]
    nested = pa.array([[[1, 2]], [[1], [2]]])
    assert len(set(hash_strings(nested).tolist())) == 2


def test_known_values_are_pinned() -> None:
    # If this fails, every existing train/eval split would move: do not change the hash.
    assert stable_row_hash(_tiny()).tolist() == [
        14694656683927374806,
        15683094105802776917,
        10060049686654608554,
    ]
    assert stable_row_hash(_tiny(), salt="s").tolist() == [
        7869209071491460132,
        9103030256944657620,
        2018139764732245330,
    ]
    assert hash_strings(pa.array(["", "a", None])).tolist() == [
        16294208416658607535,
        18119689086777206668,
        7640891576956012808,
    ]


def test_same_hash_in_other_processes() -> None:
    code = (
        "import json, pyarrow as pa\n"
        "from lockgate.data.split import stable_row_hash\n"
        f"print(json.dumps(stable_row_hash(pa.table({TINY!r})).tolist()))\n"
    )
    results = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        results.append(json.loads(out.stdout))
    assert results[0] == results[1] == stable_row_hash(_tiny()).tolist()


def test_hash_independent_of_chunking_column_order_and_text_type() -> None:
    t = _tiny()
    chunked = pa.concat_tables([t.slice(0, 1), t.slice(1)])
    assert stable_row_hash(chunked).tolist() == stable_row_hash(t).tolist()
    assert stable_row_hash(t.select(["c", "a", "b"])).tolist() == stable_row_hash(t).tolist()
    assert stable_row_hash(t.slice(1)).tolist() == stable_row_hash(t).tolist()[1:]
    as_text = pa.table({"a": ["1", "2", None]})
    assert stable_row_hash(as_text).tolist() == stable_row_hash(t.select(["a"])).tolist()


def test_null_empty_and_zero_byte_strings_differ() -> None:
    h = hash_strings(pa.array([None, "", "\x00", "\x00\x00", "a", "a\x00"]))
    assert len(set(h.tolist())) == 6


def test_unknown_column() -> None:
    with pytest.raises(ColumnNotFoundError, match="column 'z' not found"):
        stable_row_hash(_tiny(), ["z"])


def test_split_deterministic_and_fraction_close() -> None:
    n = 10_000
    t = pa.table({"id": np.arange(n), "s": [f"row-{i}" for i in range(n)]})
    train, eval_ = split_table(t, eval_fraction=0.2)
    assert train.num_rows + eval_.num_rows == n
    assert abs(eval_.num_rows / n - 0.2) < 0.015
    train2, eval2 = split_table(t, eval_fraction=0.2)
    assert eval2.equals(eval_) and train2.equals(train)
    assert not set(train["id"].to_pylist()) & set(eval_["id"].to_pylist())
    _, salted = split_table(t, eval_fraction=0.2, salt="other")
    assert salted["id"].to_pylist() != eval_["id"].to_pylist()
    # a row's side does not depend on the rest of the table
    _, eval_part = split_table(t.slice(0, 5000), eval_fraction=0.2)
    assert eval_part["id"].to_pylist() == [i for i in eval_["id"].to_pylist() if i < 5000]


@pytest.mark.parametrize("bad", [0, 1, 0.0, 1.0, -0.1, 1.5, True, "0.2", None])
def test_split_rejects_bad_fraction(bad: object) -> None:
    with pytest.raises(ConfigError, match="'eval_fraction' parameter of split_table"):
        split_table(_tiny(), eval_fraction=bad)  # type: ignore[arg-type]
