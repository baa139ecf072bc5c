import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lockgate.data.readers import infer_format, iter_batches, read_table
from lockgate.errors import DataFileError


def test_penguins_csv_types_and_missing(penguins_csv: Path) -> None:
    t = read_table(penguins_csv)
    assert t.num_rows == 344
    assert t.schema.field("species").type == pa.string()
    assert t.schema.field("flipper_length_mm").type == pa.int64()
    assert t.schema.field("bill_length_mm").type == pa.float64()
    assert t.column("bill_length_mm").null_count == 2
    assert t.column("sex").null_count == 11


def test_all_null_markers(tmp_path: Path) -> None:
    f = tmp_path / "n.csv"
    f.write_text("a,b\nNA,x\n,y\nnull,z\nNaN,w\nN/A,v\n1,\n")
    t = read_table(f)
    assert t.column("a").null_count == 5
    assert t.column("b").null_count == 1
    assert t.schema.field("a").type == pa.int64()


def test_parquet_file_folder_and_jsonl_roundtrip(tmp_path: Path, penguins_csv: Path) -> None:
    t = read_table(penguins_csv)
    pq.write_table(t, tmp_path / "one.parquet")
    (tmp_path / "parts").mkdir()
    pq.write_table(t.slice(0, 100), tmp_path / "parts" / "a.parquet")
    pq.write_table(t.slice(100), tmp_path / "parts" / "b.parquet")
    assert read_table(tmp_path / "one.parquet").equals(t)
    assert read_table(tmp_path / "parts").num_rows == 344
    rows = t.slice(0, 5).to_pylist()
    (tmp_path / "x.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_table(tmp_path / "x.jsonl").to_pylist() == rows


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_iter_batches_sizes(tmp_path: Path, penguins_csv: Path, fmt: str) -> None:
    path = penguins_csv
    if fmt == "parquet":
        path = tmp_path / "p.pq"
        pq.write_table(read_table(penguins_csv), path, row_group_size=50)
    batches = list(iter_batches(path, batch_size=100))
    assert sum(b.num_rows for b in batches) == 344
    assert all(b.num_rows <= 100 for b in batches)


def test_missing_file_names_path(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"nope\.csv does not exist") as info:
        read_table(tmp_path / "nope.csv")
    assert info.value.path == str(tmp_path / "nope.csv")


def test_empty_file(testdata: Path) -> None:
    with pytest.raises(DataFileError, match=r"empty\.csv is empty"):
        read_table(testdata / "empty.csv")


def test_header_only_gives_empty_table_with_columns(testdata: Path) -> None:
    t = read_table(testdata / "header_only.csv")
    assert t.num_rows == 0
    assert t.column_names == ["id", "name", "score"]


def test_malformed_row_names_file_and_line(testdata: Path) -> None:
    # line 6 of the file; a blank line and a quoted comma come before it
    with pytest.raises(
        DataFileError, match=r"malformed_row\.csv at line 6: expected 3 fields, got 4"
    ) as info:
        read_table(testdata / "malformed_row.csv")
    assert info.value.row == 6
    assert info.value.path.endswith("malformed_row.csv")
    with pytest.raises(DataFileError, match="line 6"):
        list(iter_batches(testdata / "malformed_row.csv"))


def test_non_utf8_names_file_and_column(testdata: Path) -> None:
    with pytest.raises(
        DataFileError, match=r"latin1\.csv is not valid UTF-8 in column 'city'"
    ) as info:
        read_table(testdata / "latin1.csv")
    assert info.value.column == "city"


def test_duplicate_column_named(testdata: Path) -> None:
    with pytest.raises(DataFileError, match=r"column 'score' appears more than once") as info:
        read_table(testdata / "duplicate_columns.csv")
    assert info.value.column == "score"


def test_malformed_jsonl_line(testdata: Path) -> None:
    with pytest.raises(DataFileError, match=r"malformed\.jsonl at line 2") as info:
        read_table(testdata / "malformed.jsonl")
    assert info.value.row == 2


def test_corrupt_parquet(tmp_path: Path) -> None:
    f = tmp_path / "bad.parquet"
    f.write_bytes(b"not a parquet file at all")
    with pytest.raises(DataFileError, match=r"bad\.parquet"):
        read_table(f)
    with pytest.raises(DataFileError, match=r"bad\.parquet"):
        list(iter_batches(f))


def test_format_inference_and_unknown(tmp_path: Path) -> None:
    assert infer_format("a.NDJSON") == "jsonl"
    assert infer_format("a.pq") == "parquet"
    with pytest.raises(DataFileError, match=r"suffix '\.xlsx'"):
        infer_format("a.xlsx")
    with pytest.raises(DataFileError, match="unknown format 'xml'"):
        infer_format("a.csv", "xml")
