"""CSV options, Parquet globs, JSON lines and streaming: every batch has one schema."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lockgate.data.csv_stream as csv_stream
import lockgate.data.jsonl_stream as jsonl_stream
from lockgate.data.readers import CsvOptions, iter_batches, read_table
from lockgate.errors import ColumnNotFoundError, ConfigError, DataFileError


def test_delimiter_quote_and_no_header(tmp_path: Path) -> None:
    f = tmp_path / "semi.csv"
    f.write_text("1;'a;b';2.5\n2;'c';3.5\n")
    t = read_table(f, csv=CsvOptions(delimiter=";", header=False, quote_char="'"))
    assert t.column_names == ["column_0", "column_1", "column_2"]
    assert t.column("column_1").to_pylist() == ["a;b", "c"]
    assert t.schema.field("column_2").type == pa.float64()


def test_quoting_off_keeps_quotes(tmp_path: Path) -> None:
    f = tmp_path / "q.csv"
    f.write_text('a,b\n"x",1\n')
    t = read_table(f, csv=CsvOptions(quote_char=None))
    assert t.column("a").to_pylist() == ['"x"']


def test_latin1_encoding_reads(testdata: Path) -> None:
    t = read_table(testdata / "latin1.csv", csv=CsvOptions(encoding="latin-1"))
    assert t.column("city").to_pylist() == ["München", "Paris"]


def test_null_values_and_column_types(tmp_path: Path) -> None:
    f = tmp_path / "z.csv"
    f.write_text("zip,n\n01234,-\n98765,3\n")
    t = read_table(f, csv=CsvOptions(null_values=("-",), column_types={"zip": "string"}))
    assert t.column("zip").to_pylist() == ["01234", "98765"]
    assert t.column("n").to_pylist() == [None, 3]
    with pytest.raises(ColumnNotFoundError, match="column 'zpi' not found.*did you mean 'zip'"):
        read_table(f, csv=CsvOptions(column_types={"zpi": "string"}))
    with pytest.raises(ConfigError, match="must be one of"):
        CsvOptions(column_types={"zip": "text"})
    with pytest.raises(ConfigError, match="'delimiter' parameter of CsvOptions"):
        CsvOptions(delimiter=";;")


def test_stray_string_names_file_line_column_value(testdata: Path) -> None:
    with pytest.raises(
        DataFileError,
        match=r"stray_value\.csv at line 11, column 'fare': expected double, got 'n/a\?'",
    ) as info:
        read_table(testdata / "stray_value.csv")
    assert (info.value.row, info.value.column) == (11, "fare")
    assert "column_types" in (info.value.hint or "")


def test_int_widens_to_float_in_a_later_block(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(csv_stream, "BLOCK_BYTES", 1 << 10)
    f = tmp_path / "w.csv"
    f.write_text("a,b\n" + "".join(f"{i},x\n" for i in range(2000)) + "0.5,y\n")
    batches = list(iter_batches(f, batch_size=300))
    assert len(batches) > 10
    assert {b.schema.field("a").type for b in batches} == {pa.float64()}
    assert sum(b.num_rows for b in batches) == 2001
    assert all(b.num_rows <= 300 for b in batches)


def test_stray_string_in_a_later_block_is_found(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(csv_stream, "BLOCK_BYTES", 1 << 10)
    f = tmp_path / "s.csv"
    f.write_text("a\n" + "".join(f"{i}\n" for i in range(2000)) + "\nboom\n")
    with pytest.raises(DataFileError, match=r"line 2003, column 'a': expected int64, got 'boom'"):
        list(iter_batches(f))


def test_non_utf8_in_a_later_block_names_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(csv_stream, "BLOCK_BYTES", 1 << 10)
    f = tmp_path / "u.csv"
    f.write_bytes(b"a,b\n" + b"".join(b"%d,x\n" % i for i in range(1000)) + b"7,M\xfcnchen\n")
    with pytest.raises(DataFileError, match=r"not valid UTF-8 in column 'b' at line 1002"):
        list(iter_batches(f))


def test_one_megabyte_value(tmp_path: Path) -> None:
    big = "x" * (1 << 20)
    f = tmp_path / "big.csv"
    f.write_text(f"id,text\n1,{big}\n2,short\n")
    t = read_table(f)
    assert t.column("text").to_pylist() == [big, "short"]


def test_all_null_column_is_null_typed_and_late_values_are_typed(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(csv_stream, "BLOCK_BYTES", 1 << 10)
    f = tmp_path / "n.csv"
    f.write_text("a,b,c\n" + "".join(f"{i},,\n" for i in range(500)) + "1,,2.5\n")
    t = read_table(f)
    assert t.schema.field("b").type == pa.null()
    assert t.schema.field("c").type == pa.float64()
    assert t.column("c").to_pylist()[-1] == 2.5


def test_parquet_glob_and_folder_unify_int_and_float(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "d" / "a.parquet")
    pq.write_table(pa.table({"x": [0.5]}), tmp_path / "d" / "b.parquet")
    (tmp_path / "d" / "_SUCCESS").write_text("")
    for source in (tmp_path / "d", tmp_path / "d" / "*.parquet"):
        t = read_table(source)
        assert t.schema.field("x").type == pa.float64()
        assert sorted(t.column("x").to_pylist()) == [0.5, 1.0, 2.0]
    with pytest.raises(DataFileError, match=r"no file matches .*\*\.pq"):
        read_table(tmp_path / "d" / "*.pq")


def test_parquet_batches_of_files_with_different_columns_share_one_schema(
    tmp_path: Path,
) -> None:
    (tmp_path / "d").mkdir()
    pq.write_table(pa.table({"x": [1, 2, 3], "s": ["a", "b", "c"]}), tmp_path / "d" / "a.parquet")
    pq.write_table(pa.table({"x": [0.5], "y": [True]}), tmp_path / "d" / "b.parquet")
    batches = list(iter_batches(tmp_path / "d", batch_size=2))
    assert [b.num_rows for b in batches] == [2, 1, 1]
    assert {b.schema.to_string() for b in batches} == {batches[0].schema.to_string()}
    t = pa.Table.from_batches(batches)
    assert t.schema.field("x").type == pa.float64()
    assert t.column("x").to_pylist() == [1.0, 2.0, 3.0, 0.5]
    assert t.column("s").to_pylist() == ["a", "b", "c", None]
    assert t.column("y").to_pylist() == [None, None, None, True]


def test_jsonl_streams_chunks_with_one_schema(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(jsonl_stream, "CHUNK_BYTES", 256)
    rows = [{"a": i, "b": None} for i in range(100)] + [{"a": 0.5, "b": "x"}]
    f = tmp_path / "x.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    batches = list(iter_batches(f, batch_size=7))
    assert len(batches) > 10
    assert {(b.schema.field("a").type, b.schema.field("b").type) for b in batches} == {
        (pa.float64(), pa.string())
    }
    assert pa.Table.from_batches(batches).column("a").to_pylist()[-1] == 0.5


def test_jsonl_bad_lines_error_or_set_aside(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(jsonl_stream, "CHUNK_BYTES", 64)
    f = tmp_path / "x.jsonl"
    lines = [json.dumps({"a": i}) for i in range(20)]
    lines[12] = '{"a": '
    lines[15] = '{"a": "text"}'
    f.write_text("\n".join(lines[:5]) + "\n\n" + "\n".join(lines[5:]) + "\n")
    with pytest.raises(DataFileError, match=r"x\.jsonl at line 14"):
        list(iter_batches(f))
    rejected: list[pa.Table] = []
    t = pa.Table.from_batches(list(iter_batches(f, on_bad_rows=rejected.append)))
    assert t.num_rows == 18
    got = pa.concat_tables(rejected).to_pylist()
    assert [r["line"] for r in got] == [14, 17]
    assert got[1]["column"] == "a" and got[1]["text"] == '{"a": "text"}'
    assert "changed from number to string" in got[1]["reason"]
