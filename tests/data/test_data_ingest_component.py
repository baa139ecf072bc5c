"""The ingest component on CSV and Parquet, through a real pipeline run."""

from __future__ import annotations

from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lockgate import Pipeline, run_pipeline
from lockgate.components import compute_statistics, ingest
from lockgate.metadata.store import SqlMetadataStore

PENGUINS = (
    Path(__file__).resolve().parents[2]
    / "lockgate"
    / "templates"
    / "penguins"
    / "data"
    / "penguins.csv"
)


def test_csv_and_parquet_of_the_same_data_give_the_same_split(tmp_path: Path) -> None:
    table = pacsv.read_csv(
        PENGUINS, convert_options=pacsv.ConvertOptions(null_values=["NA"], strings_can_be_null=True)
    )
    pq.write_table(table, tmp_path / "penguins.parquet")
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    splits = {}
    for name, path in (("csv", str(PENGUINS)), ("parquet", "penguins.parquet")):
        step = ingest(path=path, eval_fraction=0.3)
        stats = compute_statistics(examples=step.outputs.examples)
        result = run_pipeline(
            Pipeline(name, [step, stats]),
            store=store,
            artifact_root=tmp_path / "a",
            project_dir=tmp_path,
        )
        assert result.ok, result.error
        examples = result.steps["ingest"].outputs["examples"]
        train = pq.read_table(Path(examples.uri) / "train")
        evaluation = pq.read_table(Path(examples.uri) / "eval")
        assert train.num_rows + evaluation.num_rows == 344
        assert examples.properties["splits"] == {
            "train": train.num_rows,
            "eval": evaluation.num_rows,
        }
        assert 0.2 < evaluation.num_rows / 344 < 0.4
        splits[name] = sorted(
            evaluation.column("bill_length_mm").to_pylist(), key=lambda v: (v is None, v)
        )
        counts = result.steps["compute_statistics"].outputs["statistics"].properties["num_rows"]
        assert counts == {"train": train.num_rows, "eval": evaluation.num_rows, "all": 344}
    assert splits["csv"] == splits["parquet"]
    store.close()
