"""`lockgate demo --template diabetes`: a regression with a tuned XGBoost, end to end as a
newcomer runs it: tuned, trained on the best trial, blessed on regression thresholds,
pushed, served and answering; more trials continue the same study."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pyarrow.csv
from support import lockgate, served

from lockgate.metadata.store import SqlMetadataStore

DATA = Path(__file__).resolve().parents[2] / "lockgate/templates/diabetes/data/diabetes.csv"


def test_the_diabetes_demo_tunes_blesses_on_regression_thresholds_and_serves(
    tmp_path: Path,
) -> None:
    done = lockgate("demo", "--template", "diabetes", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    project = tmp_path / "lockgate-demo-diabetes"
    assert "Task: regression" in out and "Blessed: yes" in out
    tuning = next(line for line in out.splitlines() if line.startswith("Tuning:"))
    assert tuning.startswith("Tuning: best rmse ") and " of 20 trials (" in tuning
    assert "Pushed: yes, model 'diabetes' version 1, now in production" in out
    metrics = next(line for line in out.splitlines() if line.startswith("Model metrics"))
    assert "rmse" in metrics and "r2" in metrics and "accuracy" not in metrics

    store = SqlMetadataStore(f"sqlite:///{project / '.lockgate' / 'metadata.db'}")
    try:
        (tuned,) = store.artifacts_of_type("HyperParameters")
        (model,) = store.artifacts_of_type("Model")
        (blessing,) = store.artifacts_of_type("Blessing")
    finally:
        store.close()
    assert tuned.properties["trials"] == 20 and tuned.properties["metric"] == "rmse"
    best = tuned.properties["params"]
    assert model.properties["framework"] == "xgboost"
    assert {k: model.properties["params"][k] for k in best} == best  # trained on the best trial
    assert blessing.properties["blessed"] is True

    table = pyarrow.csv.read_csv(DATA).slice(0, 5)
    rows = table.drop_columns(["progression"]).to_pylist()
    with served(project) as url:
        answer = httpx.post(
            f"{url}/v1/models/diabetes:predict", json={"instances": rows}, timeout=30
        )
    assert answer.status_code == 200, answer.text
    predicted = np.asarray(answer.json()["predictions"], dtype=float).reshape(-1)
    truth = np.asarray(table.column("progression").to_pylist())
    assert predicted.shape == (5,) and np.all((predicted > 25) & (predicted < 346))
    assert np.mean(np.abs(predicted - truth)) < 80  # a model, not a constant far off

    more = lockgate("run", "--set", "tune.n_trials=24", cwd=project)
    assert more.returncode == 0, more.stdout + more.stderr
    assert "parameter n_trials: 20 → 24" in more.stdout
    store = SqlMetadataStore(f"sqlite:///{project / '.lockgate' / 'metadata.db'}")
    try:
        first, second = store.artifacts_of_type("HyperParameters")
    finally:
        store.close()
    assert second.properties["study_name"] == first.properties["study_name"]
    assert second.properties["trials"] == 24  # the same study, four trials more
