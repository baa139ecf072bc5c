"""The pure layers end to end on real data: transform, train, save, load, evaluate, bless."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.csv

from lockgate.evaluation.blessing import decide_blessing
from lockgate.evaluation.engine import Predictions, score_models
from lockgate.evaluation.metrics import compute_metrics
from lockgate.evaluation.results import BootstrapSettings
from lockgate.training.model_files import load_model, save_model
from lockgate.training.trainers import train_model
from lockgate.training.transform import TransformGraph, drop_missing_label

PENGUINS = Path(__file__).parents[2] / "lockgate/templates/penguins/data/penguins.csv"


def test_penguins_end_to_end(tmp_path: Path) -> None:
    options = pyarrow.csv.ConvertOptions(null_values=["NA", ""], strings_can_be_null=True)
    table = drop_missing_label(pyarrow.csv.read_csv(PENGUINS, convert_options=options), "species")
    order = np.random.default_rng(11).permutation(table.num_rows)
    train, evaluation = table.take(order[:240]), table.take(order[240:])

    graph = TransformGraph.fit(train, label="species")
    graph.save(tmp_path / "transform")
    model = train_model(
        graph.apply(train), graph.encode_label(train), spec="lightgbm", task=graph.task
    )
    info = save_model(model, tmp_path / "model")

    served = TransformGraph.load(tmp_path / "transform")
    loaded = load_model(tmp_path / "model", sha256=info.sha256)
    X, y = served.apply(evaluation), served.encode_label(evaluation)
    n_classes = len(served.label_classes or [])
    overall = compute_metrics(graph.task, y, loaded.predict(X), loaded.predict_proba(X), n_classes)
    assert overall["accuracy"] > 0.9 and overall["example_count"] == evaluation.num_rows

    scores = score_models(
        graph.task,
        y,
        {"candidate": Predictions(loaded.predict(X), loaded.predict_proba(X))},
        evaluation,
        slice_by=["island", "sex", ["island", "sex"]],
        class_names=served.label_classes,
        bootstrap=BootstrapSettings(n_resamples=20),
    )["candidate"]
    assert scores.overall.metrics["accuracy"].value == overall["accuracy"]
    for features in (["island"], ["sex"], ["island", "sex"]):
        counts = [s.example_count for s in scores.slices if [f for f, _ in s.key] == features]
        assert sum(counts) == evaluation.num_rows
    assert (("sex", None),) in scores.by_key()

    decision = decide_blessing(
        scores,
        None,
        {"accuracy": {"lower_bound": 0.9, "max_regression": 0.0}},
        directions={"accuracy": True},
    )
    assert decision.blessed, decision.reasons
