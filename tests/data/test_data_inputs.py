"""Inputs a newcomer brings: a folder of CSV or JSON-lines files, compressed text files
(.gz, .bz2, .zst), and the CLI's --format, --delimiter, --no-header and --column-names."""

from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from click.testing import CliRunner
from support import rows_and_peak_rss

from lockgate.cli.main import cli
from lockgate.data.ingest import ingest_to_folder
from lockgate.data.readers import CsvOptions, data_files, iter_batches, read_table
from lockgate.errors import DataFileError


def _compress(path: Path, kind: str) -> Path:
    data = path.read_bytes()
    target = path.with_name(path.name + {"gzip": ".gz", "bz2": ".bz2", "zstd": ".zst"}[kind])
    if kind == "gzip":
        target.write_bytes(gzip.compress(data))
    elif kind == "bz2":
        target.write_bytes(bz2.compress(data))
    else:
        with pa.output_stream(str(target), compression="zstd") as out:
            out.write(data)
    return target


def _split_penguins(penguins_csv: Path, folder: Path, parts: int = 3) -> None:
    header, *rows = penguins_csv.read_text().splitlines(keepends=True)
    folder.mkdir()
    size = -(-len(rows) // parts)
    for i in range(parts):
        (folder / f"part-{i}.csv").write_text(header + "".join(rows[i * size : (i + 1) * size]))


# -- compressed files ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gzip", "bz2", "zstd"])
def test_a_compressed_csv_reads_as_the_plain_file(
    penguins_csv: Path, tmp_path: Path, kind: str
) -> None:
    plain = tmp_path / "penguins.csv"
    plain.write_bytes(penguins_csv.read_bytes())
    packed = _compress(plain, kind)
    assert read_table(packed).equals(read_table(plain))


def test_a_compressed_jsonl_reads_as_the_plain_file(tmp_path: Path) -> None:
    plain = tmp_path / "rows.jsonl"
    plain.write_text("".join(json.dumps({"x": i, "s": f"v{i}"}) + "\n" for i in range(1000)))
    assert read_table(_compress(plain, "gzip")).equals(read_table(plain))


def test_errors_in_a_compressed_file_name_the_file_and_the_line(tmp_path: Path) -> None:
    # past the first megabyte, so that the line index reads on across chunks
    rows = "".join(f"{i},{i * 0.5},name-{i:08d}\n" for i in range(120_000))
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n" + rows + "1,2,3,4\n")
    packed = _compress(bad, "gzip")
    with pytest.raises(DataFileError, match=r"bad\.csv\.gz at line 120002: expected 3 fields"):
        read_table(packed)
    value = tmp_path / "value.csv"
    value.write_text("a,b,c\n" + rows + "x,2,3\n")
    with pytest.raises(DataFileError, match=r"value\.csv\.zst at line 120002, column 'a'"):
        read_table(_compress(value, "zstd"))


def test_rows_set_aside_in_a_compressed_file_keep_their_lines(tmp_path: Path) -> None:
    f = tmp_path / "skip.csv"
    numbers = "".join(f"{i},{i}\n" for i in range(10, 40))
    f.write_text("a,b\n1,2\n3,4,5\n6,7\nx,8\n" + numbers)
    rejected: list[pa.Table] = []
    table = read_table_skipping(_compress(f, "bz2"), rejected)
    assert table.column("a").to_pylist()[:3] == [1, 6, 10]
    lines = sorted(line for t in rejected for line in t.column("line").to_pylist())
    assert lines == [3, 5]


def read_table_skipping(path: Path, rejected: list[pa.Table]) -> pa.Table:
    return pa.Table.from_batches(list(iter_batches(path, on_bad_rows=rejected.append)))


def test_bytes_that_are_not_utf8_in_a_compressed_file_are_located(tmp_path: Path) -> None:
    f = tmp_path / "latin.csv"
    f.write_bytes(b"city,n\nParis,1\nM\xfcnchen,2\n")
    with pytest.raises(DataFileError, match=r"not valid UTF-8 in column 'city' at line 3"):
        read_table(_compress(f, "gzip"))


def test_a_compressed_parquet_file_is_refused_with_the_reason(tmp_path: Path) -> None:
    f = tmp_path / "x.parquet.gz"
    f.write_bytes(gzip.compress(b"PAR1"))
    with pytest.raises(DataFileError, match="Parquet compresses inside the file"):
        read_table(f)


_CHILD = """
import json, resource, sys
from lockgate.data.readers import iter_batches
rows = sum(b.num_rows for b in iter_batches(sys.argv[1], batch_size=65_536))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"rows": rows, "peak": peak}))
"""


def test_a_compressed_csv_streams_in_bounded_memory(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)

    def write(path: Path, rows: int) -> int:
        with gzip.open(path, "wt", compresslevel=1) as out:
            out.write("id,x,s\n")
            for start in range(0, rows, 100_000):
                n = min(100_000, rows - start)
                ids, xs = np.arange(start, start + n), rng.random(n)
                out.write(
                    "".join(
                        f"{i},{x:.6f},s{i * 7919 % 10**9}\n" for i, x in zip(ids, xs, strict=True)
                    )
                )
        return rows * 30  # bytes of text, about

    small = write(tmp_path / "small.csv.gz", 100_000)
    big = write(tmp_path / "big.csv.gz", 1_500_000)
    small_rows, small_peak = rows_and_peak_rss(_CHILD, str(tmp_path / "small.csv.gz"))
    big_rows, big_peak = rows_and_peak_rss(_CHILD, str(tmp_path / "big.csv.gz"))
    assert (small_rows, big_rows) == (100_000, 1_500_000)
    assert big_peak - small_peak < 0.5 * (big - small), (small_peak >> 20, big_peak >> 20)


# -- folders ---------------------------------------------------------------------------------


def test_a_folder_of_csv_files_reads_as_one_file(penguins_csv: Path, tmp_path: Path) -> None:
    _split_penguins(penguins_csv, tmp_path / "spans")
    (tmp_path / "spans" / "_SUCCESS").write_text("")
    (tmp_path / "spans" / ".part-9.csv.crc").write_text("junk")
    _compress(tmp_path / "spans" / "part-2.csv", "gzip")
    (tmp_path / "spans" / "part-2.csv").unlink()  # one part compressed: still one folder
    assert [f.name for f in data_files(tmp_path / "spans")] == [
        "part-0.csv",
        "part-1.csv",
        "part-2.csv.gz",
    ]
    assert read_table(tmp_path / "spans").equals(read_table(penguins_csv))


def test_the_files_of_a_folder_share_the_widest_type(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("n,s\n1,x\n2,\n")
    (tmp_path / "d" / "b.csv").write_text("n,s\n2.5,y\n3,z\n")
    batches = list(iter_batches(tmp_path / "d"))
    assert {b.schema.field("n").type for b in batches} == {pa.float64()}
    assert pa.Table.from_batches(batches).column("n").to_pylist() == [1.0, 2.0, 2.5, 3.0]


def test_a_csv_file_with_other_columns_is_named(penguins_csv: Path, tmp_path: Path) -> None:
    _split_penguins(penguins_csv, tmp_path / "spans")
    odd = tmp_path / "spans" / "part-1.csv"
    table = pacsv.read_csv(odd).drop_columns(["sex"])
    pacsv.write_csv(table, odd)
    with pytest.raises(DataFileError, match=r"columns of .*part-1\.csv differ .*lacks \['sex'\]"):
        read_table(tmp_path / "spans")


def test_a_folder_of_jsonl_files_takes_the_union_of_keys(tmp_path: Path) -> None:
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "a.jsonl").write_text('{"x": 1, "y": "a"}\n{"x": 2}\n')
    (tmp_path / "j" / "b.jsonl").write_text('{"x": 1.5, "z": true}\n')
    _compress(tmp_path / "j" / "b.jsonl", "gzip")
    (tmp_path / "j" / "b.jsonl").unlink()
    table = read_table(tmp_path / "j")
    assert table.column_names == ["x", "y", "z"]
    assert table.column("x").to_pylist() == [1.0, 2.0, 1.5]
    assert table.column("z").to_pylist() == [None, None, True]


def test_a_folder_that_mixes_formats_says_so(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.csv").write_text("x\n1\n")
    (tmp_path / "m" / "b.jsonl").write_text('{"x": 2}\n')
    with pytest.raises(
        DataFileError, match=r"mixes formats \(.*a\.csv is csv, .*b\.jsonl is jsonl"
    ):
        read_table(tmp_path / "m")
    assert read_table(tmp_path / "m", format="csv").column("x").to_pylist() == [1]
    with pytest.raises(DataFileError, match="no CSV, Parquet or JSON-lines files"):
        (tmp_path / "empty").mkdir()
        read_table(tmp_path / "empty")


def test_a_glob_of_csv_files_reads_them_all(penguins_csv: Path, tmp_path: Path) -> None:
    _split_penguins(penguins_csv, tmp_path / "spans")
    assert read_table(tmp_path / "spans" / "part-*.csv").num_rows == 344


def test_ingest_takes_a_folder_of_compressed_csv_files(penguins_csv: Path, tmp_path: Path) -> None:
    _split_penguins(penguins_csv, tmp_path / "spans")
    for f in sorted((tmp_path / "spans").iterdir()):
        _compress(f, "zstd")
        f.unlink()
    report = ingest_to_folder(tmp_path / "spans", tmp_path / "out", eval_fraction=0.25)
    assert sum(report.splits.values()) == 344
    assert report.columns[0] == "species"


# -- CSV options and the CLI flags -----------------------------------------------------------


def test_column_names_name_a_file_without_header(tmp_path: Path) -> None:
    f = tmp_path / "plain.txt"
    f.write_text("1\tx\n2\ty\n")
    options = CsvOptions(delimiter="\t", header=False, column_names=("n", "s"))
    table = read_table(f, format="csv", csv=options)
    assert table.column_names == ["n", "s"]
    with pytest.raises(DataFileError, match="has 2 fields per row; 3 column names were given"):
        three = CsvOptions(delimiter="\t", header=False, column_names=("a", "b", "c"))
        read_table(f, format="csv", csv=three)


@pytest.fixture
def tsv(penguins_csv: Path, tmp_path: Path) -> Path:
    """The penguins as tab-separated text without a header, gzipped, with a .txt name."""
    body = penguins_csv.read_text().splitlines(keepends=True)[1:]
    f = tmp_path / "penguins.txt.gz"
    f.write_bytes(gzip.compress("".join(line.replace(",", "\t") for line in body).encode()))
    return f


NAMES = "species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year"
FLAGS = ["--format", "csv", "--delimiter", "tab", "--no-header", "--column-names", NAMES]


def _lockgate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_stats_schema_validate_and_drift_take_the_input_flags(
    tsv: Path, penguins_csv: Path, tmp_path: Path
) -> None:
    code, out = _lockgate("stats", str(tsv), "--json", *FLAGS)
    assert code == 0, out
    stats = json.loads(out)
    assert stats["num_rows"] == 344
    assert list(stats["features"]) == NAMES.split(",")
    code, schema = _lockgate("schema", "infer", str(tsv), *FLAGS)
    assert code == 0, schema
    (tmp_path / "schema.yaml").write_text(schema)
    code, out = _lockgate("validate", str(tsv), "--schema", str(tmp_path / "schema.yaml"), *FLAGS)
    assert (code, out.strip()) == (0, "no anomalies")
    code, out = _lockgate("drift", str(tsv), str(tsv), "--json", *FLAGS)
    assert code == 0, out
    assert json.loads(out)["passed"] is True


def test_the_data_cli_takes_a_folder_and_a_compressed_file(
    penguins_csv: Path, tmp_path: Path
) -> None:
    _split_penguins(penguins_csv, tmp_path / "spans")
    plain = tmp_path / "penguins.csv"
    plain.write_bytes(penguins_csv.read_bytes())
    packed = _compress(plain, "gzip")
    code, out = _lockgate("stats", str(tmp_path / "spans"), "--json")
    assert code == 0, out
    assert json.loads(out)["num_rows"] == 344
    code, out = _lockgate("drift", str(tmp_path / "spans"), str(packed))
    assert code == 0, out


def test_without_the_flags_a_headerless_file_is_misread_and_the_flags_say_why(
    tsv: Path,
) -> None:
    code, out = _lockgate("stats", str(tsv))
    assert code == 2
    assert "cannot tell the format" in out and "--format" in out
    code, out = _lockgate("stats", str(tsv), "--delimiter", ";;")
    assert code == 2 and "must be one character" in out
