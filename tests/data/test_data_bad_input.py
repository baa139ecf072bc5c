"""Input that used to end in a traceback or a misleading message: a line too long for the
reader, bytes that are not text, a nested Parquet column, a span without rows. Each is a
``DataFileError`` (or one anomaly) naming the file, the file's own line and the column."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lockgate.data.csv_stream as csv_stream
from lockgate.data.ingest import ingest_to_folder
from lockgate.data.readers import CsvOptions, iter_batches, read_table
from lockgate.data.schema import Schema
from lockgate.data.statistics import compute_statistics
from lockgate.data.validate import find_anomalies
from lockgate.errors import DataError, DataFileError

# -- a line longer than the reader's largest block -------------------------------------------


def test_a_line_too_long_for_the_reader_names_its_line_and_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_stream, "BLOCK_BYTES", 1 << 10)
    monkeypatch.setattr(csv_stream, "MAX_BLOCK_BYTES", 1 << 12)  # lines under 2 KiB
    f = tmp_path / "long.csv"
    f.write_text("id,text\n1,short\n2," + "x" * 2046 + "\n3,short\n")
    with pytest.raises(
        DataFileError,
        match=r"line 3 of .*long\.csv is 2,048 bytes long; a CSV line must be shorter than "
        r"2 KiB \(2,048 bytes\)",
    ) as info:
        list(iter_batches(f))
    assert info.value.row == 3 and info.value.path == str(f)
    assert "Parquet" in (info.value.hint or "")
    with pytest.raises(DataFileError, match="line 3 of"):
        ingest_to_folder(f, tmp_path / "out")
    f.write_text("id,text\n1,short\n2," + "x" * 2045 + "\n")  # one byte less: read
    assert read_table(f).num_rows == 2


# -- bytes that are not text -----------------------------------------------------------------


def _printable_ascii(text: str) -> bool:
    return text.isascii() and text.isprintable()


def test_random_bytes_are_one_error_with_no_raw_bytes(
    testdata: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(
        DataFileError,
        match=r"random_bytes\.csv is not valid UTF-8 in its header \(field \d+\) at line 1: "
        r"byte 0x[0-9a-f]{2} in b",
    ) as info:
        read_table(testdata / "random_bytes.csv")
    assert info.value.row == 1
    assert _printable_ascii(str(info.value)), str(info.value)
    assert "binary file" in (info.value.hint or "")
    assert capfd.readouterr().err == ""  # Arrow's row handler printed a traceback here


@pytest.mark.parametrize("seed", range(12))
def test_any_random_bytes_give_a_printable_data_file_error(
    tmp_path: Path, seed: int, capfd: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(seed)
    f = tmp_path / "noise.csv"
    f.write_bytes(b"a,b\n1,2\n" * int(rng.integers(0, 3)) + rng.bytes(int(rng.integers(1, 5000))))
    with pytest.raises(DataFileError) as info:
        list(iter_batches(f, on_bad_rows=(lambda rows: None) if seed % 2 else None))
    assert _printable_ascii(str(info.value)), str(info.value)
    assert info.value.row is not None and info.value.row >= 1
    assert capfd.readouterr().err == ""


def test_invalid_utf8_after_quoted_newlines_names_the_physical_line_and_column(
    testdata: Path,
) -> None:
    # the bad byte is on line 7: two quoted values before it span 2 and 3 lines
    with pytest.raises(
        DataFileError,
        match=r"not valid UTF-8 in column 'city' at line 7: byte 0xfc in b'3,plain,M\\xfcnchen'",
    ) as info:
        read_table(testdata / "not_utf8_after_quoted_lines.csv")
    assert (info.value.row, info.value.column) == (7, "city")


def test_a_byte_another_encoding_cannot_decode_names_line_and_column(tmp_path: Path) -> None:
    f = tmp_path / "cp.csv"
    f.write_bytes(b"a,b\n1,x\n2,x\x81y\n")  # 0x81 is not a cp1252 character
    with pytest.raises(
        DataFileError, match=r"not valid cp1252 in column 'b' at line 3: byte 0x81"
    ) as info:
        read_table(f, csv=CsvOptions(encoding="cp1252"))
    assert (info.value.row, info.value.column) == (3, "b")


def test_a_bad_value_after_quoted_newlines_names_the_physical_line(tmp_path: Path) -> None:
    rows = [f'{i},"note\nover two lines",{i}.5' for i in range(40)]
    rows[30] = '30,"note\nover two lines",oops'  # record 32, starting on line 62
    f = tmp_path / "notes.csv"
    f.write_text("id,note,fare\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataFileError, match=r"at line 62, column 'fare'.*'oops'") as info:
        read_table(f)
    assert info.value.row == 62
    f.write_text(f.read_text() + '40,"a, b",1.5,extra\n')  # line 82
    with pytest.raises(DataFileError, match="malformed row in .* at line 82"):
        read_table(f, csv=CsvOptions(column_types={"fare": "string"}))


def test_a_quote_never_closed_names_the_line_it_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_stream, "BLOCK_BYTES", 1 << 10)
    f = tmp_path / "open.csv"
    f.write_text('id,note\n1,ok\n2,"never closed\n' + "".join(f"{i},x\n" for i in range(3, 500)))
    with pytest.raises(DataFileError, match=r"a quote opened at line 3 of .* is never closed"):
        read_table(f)


# -- nested columns --------------------------------------------------------------------------

NESTED = r"column 'dims' of .*nested_struct\.parquet has the nested type struct<length: double"


def test_a_nested_parquet_column_is_named_by_every_reader(testdata: Path, tmp_path: Path) -> None:
    path = testdata / "nested_struct.parquet"
    with pytest.raises(DataFileError, match=NESTED) as info:
        ingest_to_folder(path, tmp_path / "out")
    assert info.value.column == "dims"
    assert "flatten" in (info.value.hint or "")
    with pytest.raises(DataFileError, match=NESTED):
        compute_statistics(path)  # what `lockgate stats` says
    with pytest.raises(DataFileError, match=NESTED):
        read_table(path)


def test_a_map_column_and_a_json_object_are_refused_too(tmp_path: Path) -> None:
    table = pa.table({"attrs": pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int64()))})
    pq.write_table(table, tmp_path / "map.parquet")
    with pytest.raises(DataFileError, match=r"column 'attrs' .* nested type map<string, int64"):
        ingest_to_folder(tmp_path / "map.parquet", tmp_path / "out")
    lines = tmp_path / "objects.jsonl"
    lines.write_text(json.dumps({"id": 1, "where": {"x": 1.5}}) + "\n")
    with pytest.raises(DataFileError, match=r"column 'where' of .*objects\.jsonl .*struct<x"):
        ingest_to_folder(lines, tmp_path / "out2")


def test_list_columns_are_ingested_as_statistics_read_them(tmp_path: Path) -> None:
    n = 200
    table = pa.table(
        {"id": list(range(n)), "tags": [[f"t{i % 7}", "x"] if i % 5 else [] for i in range(n)]}
    )
    pq.write_table(table, tmp_path / "tags.parquet")
    report = ingest_to_folder(tmp_path / "tags.parquet", tmp_path / "out")
    assert sum(report.splits.values()) == n and 0 < report.splits["eval"] < n
    again = ingest_to_folder(tmp_path / "tags.parquet", tmp_path / "again")
    assert again.splits == report.splits
    stats = compute_statistics(tmp_path / "out" / "train" / "part-0.parquet")
    assert stats["features"]["tags"]["type"] == "list"


# -- no rows ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["header_only.csv", "zero_rows.parquet"])
def test_a_span_without_rows_is_one_no_rows_anomaly(testdata: Path, name: str) -> None:
    stats = compute_statistics(testdata / name)
    assert stats["num_rows"] == 0 and len(stats["features"]) == 3  # the columns are known
    schema = Schema.from_dict({"features": {c: {"type": "string"} for c in ("a", "b")}})
    [anomaly] = find_anomalies(stats, schema)
    assert (anomaly.kind, anomaly.severity, anomaly.feature) == ("no_rows", "error", "(dataset)")
    assert "expected at least one row; saw 0 rows of 3 columns" in anomaly.message
    with pytest.raises(DataError, match="cannot infer a schema from data without rows"):
        Schema.from_statistics(stats)
    with pytest.raises(DataFileError, match="has no rows to ingest"):
        ingest_to_folder(testdata / name, Path("/nonexistent/never/written"))
    with pytest.raises(DataFileError, match=r"empty\.csv is empty \(not even a header\)"):
        compute_statistics(testdata / "empty.csv")  # without a header, no columns either


def test_every_row_set_aside_still_gives_the_columns(tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text("a,b\n1,2,3\n4,5,6\n")
    batches = list(iter_batches(f, on_bad_rows=lambda rows: None))
    assert [b.num_rows for b in batches] == [0]
    assert batches[0].schema.names == ["a", "b"]
