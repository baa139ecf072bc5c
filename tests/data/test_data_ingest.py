"""ingest_to_folder: streaming split into Parquet, and every bad input's outcome."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lockgate.data.ingest import ingest_to_folder
from lockgate.data.readers import CsvOptions, read_table
from lockgate.data.split import split_table
from lockgate.errors import ConfigError, DataFileError


def _split(out: Path, name: str) -> pa.Table:
    return pq.read_table(out / name / "part-0.parquet")


def test_batchwise_split_equals_whole_table_split(tmp_path: Path, penguins_csv: Path) -> None:
    report = ingest_to_folder(penguins_csv, tmp_path / "o", eval_fraction=0.3, batch_size=50)
    train, evaluation = split_table(read_table(penguins_csv), eval_fraction=0.3)
    assert _split(tmp_path / "o", "train").equals(train)
    assert _split(tmp_path / "o", "eval").equals(evaluation)
    assert report.splits == {"train": train.num_rows, "eval": evaluation.num_rows}
    assert report.rejected == 0 and report.span is None and report.warnings == []
    assert pq.ParquetFile(tmp_path / "o" / "train" / "part-0.parquet").metadata.num_row_groups > 1


def test_stray_string_errors_by_default_and_is_set_aside_on_request(
    tmp_path: Path, testdata: Path
) -> None:
    with pytest.raises(DataFileError, match=r"line 11, column 'fare': expected double"):
        ingest_to_folder(testdata / "stray_value.csv", tmp_path / "o")
    report = ingest_to_folder(testdata / "stray_value.csv", tmp_path / "s", bad_rows="skip")
    assert sum(report.splits.values()) == 23 and report.rejected == 1
    assert report.reasons == ["line 11, column 'fare': expected double, got 'n/a?'"]
    rejected = pq.read_table(tmp_path / "s" / "rejected" / "rejected.parquet").to_pylist()
    assert rejected == [
        {
            "line": 11,
            "column": "fare",
            "reason": "expected double, got 'n/a?'",
            "text": "10,n/a?,c10",
        }
    ]
    assert _split(tmp_path / "s", "train").schema.field("fare").type == pa.float64()


def test_ragged_rows_error_or_are_set_aside(tmp_path: Path, testdata: Path) -> None:
    with pytest.raises(
        DataFileError, match=r"malformed_row\.csv at line 6: expected 3 fields, got 4"
    ):
        ingest_to_folder(testdata / "malformed_row.csv", tmp_path / "o")
    f = tmp_path / "r.csv"
    f.write_text("a,b\n1,2\n\n3\n4,5,6\n7,8\n")
    report = ingest_to_folder(f, tmp_path / "s", bad_rows="skip")
    assert sum(report.splits.values()) == 2 and report.rejected == 2
    assert report.reasons == [
        "line 4: expected 2 fields, got 1",
        "line 5: expected 2 fields, got 3",
    ]
    texts = pq.read_table(tmp_path / "s" / "rejected").column("text").to_pylist()
    assert texts == ["3", "4,5,6"]


def test_empty_and_header_only(tmp_path: Path, testdata: Path) -> None:
    with pytest.raises(DataFileError, match=r"empty\.csv is empty \(not even a header\)"):
        ingest_to_folder(testdata / "empty.csv", tmp_path / "a")
    with pytest.raises(DataFileError, match=r"header_only\.csv has no rows to ingest"):
        ingest_to_folder(testdata / "header_only.csv", tmp_path / "b")


def test_all_rows_bad_is_no_rows(tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_text("a,b\n1\n2\n")
    with pytest.raises(DataFileError, match=r"no rows to ingest \(2 bad rows set aside\)"):
        ingest_to_folder(f, tmp_path / "o", bad_rows="skip")


def test_all_null_column_is_kept_as_strings_with_a_warning(tmp_path: Path) -> None:
    f = tmp_path / "n.csv"
    f.write_text("a,empty\n1,\n2,NA\n3,\n")
    report = ingest_to_folder(f, tmp_path / "o", eval_fraction=0.5)
    train = _split(tmp_path / "o", "train")
    assert train.schema.field("empty").type == pa.string()
    assert train.column("empty").null_count == train.num_rows
    assert report.warnings == [
        "column 'empty' has no value in any row; kept as a string column of nulls"
    ]


def test_one_megabyte_value_is_ingested(tmp_path: Path) -> None:
    big = "y" * (1 << 20)
    f = tmp_path / "big.csv"
    f.write_text("".join(["id,text\n", f"1,{big}\n", *(f"{i},s\n" for i in range(2, 20))]))
    report = ingest_to_folder(f, tmp_path / "o")
    rows = pa.concat_tables([_split(tmp_path / "o", "train"), _split(tmp_path / "o", "eval")])
    assert sum(report.splits.values()) == 19
    assert big in rows.column("text").to_pylist()


def test_duplicate_columns_named(tmp_path: Path, testdata: Path) -> None:
    with pytest.raises(DataFileError, match=r"column 'score' appears more than once") as info:
        ingest_to_folder(testdata / "duplicate_columns.csv", tmp_path / "o")
    assert info.value.column == "score"


def test_non_utf8_errors_with_line_unless_encoding_given(tmp_path: Path, testdata: Path) -> None:
    with pytest.raises(
        DataFileError, match=r"latin1\.csv is not valid UTF-8 in column 'city' at line 2"
    ) as info:
        ingest_to_folder(testdata / "latin1.csv", tmp_path / "o")
    assert (info.value.row, info.value.column) == (2, "city")
    report = ingest_to_folder(
        testdata / "latin1.csv", tmp_path / "l", csv=CsvOptions(encoding="latin-1")
    )
    assert sum(report.splits.values()) == 2


def test_parquet_glob_and_jsonl_sources(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    for i in range(3):
        pq.write_table(
            pa.table({"x": list(range(i * 10, i * 10 + 10))}), tmp_path / "d" / f"p{i}.parquet"
        )
    report = ingest_to_folder(tmp_path / "d" / "*.parquet", tmp_path / "o")
    assert sum(report.splits.values()) == 30
    (tmp_path / "x.jsonl").write_text("".join(f'{{"x": {i}}}\n' for i in range(10)))
    assert sum(ingest_to_folder(tmp_path / "x.jsonl", tmp_path / "j").splits.values()) == 10


def test_bad_rows_parameter_checked(tmp_path: Path, penguins_csv: Path) -> None:
    with pytest.raises(
        ConfigError, match="'bad_rows' parameter of ingest must be 'keep', 'skip' or 'error'"
    ):
        ingest_to_folder(penguins_csv, tmp_path / "o", bad_rows="drop")
