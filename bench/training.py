"""Training and tuning: lockgate's steps against the same library calls made directly.

In one run, on generated data (``--rows`` rows x 20 numeric features, a binary label from
a fixed-seed nonlinear rule, written once as Parquet and ingested by a real pipeline):

(a) lockgate's ``train`` step (a real pipeline run: reads the Examples' Parquet, applies
    the fitted transform, fits, saves the model with its sha256, registers it) against
    ``LGBMClassifier(...).fit(X, y)`` and ``XGBClassifier(...).fit(X, y)`` called directly on
    the same rows already in memory, with the parameters lockgate passes (named below).
    Interleaved cell by cell (lockgate, direct, lockgate, direct, ...); medians.
(b) lockgate's ``tune`` step (``--trials`` trials, TPE seed 0, pruning on) against a plain
    Optuna loop over the same objective: the same matrices, the same LightGBM parameters,
    TPE seed 0, the same pruner fed by a LightGBM callback, Optuna's in-memory storage,
    scored with scikit-learn's log_loss on the eval split. Interleaved; medians.
(c) lockgate's ``tune`` with pruning on against pruning off: boosting rounds in total and
    the best log_loss.

Run: ``python bench/training.py [--rows 1000000] [--tune-rows 100000] [--trials 30]``.
The machine must be otherwise idle.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

FEATURES = 20
LGBM = {"n_estimators": 100, "learning_rate": 0.1, "num_leaves": 31}
XGB = {"n_estimators": 100, "learning_rate": 0.1, "max_depth": 6}
#: what lockgate's frameworks add (lockgate/training/frameworks/{lightgbm,xgboost}.py)
LGBM_DEFAULTS = {"verbose": -1, "n_jobs": 1, "deterministic": True, "force_row_wise": True}
XGB_DEFAULTS = {"n_jobs": 1, "tree_method": "hist", "verbosity": 0, "device": "cpu"}
SPACE = {
    "learning_rate": {"low": 0.01, "high": 0.3, "log": True},
    "num_leaves": {"low": 8, "high": 128},
    "min_child_samples": {"low": 5, "high": 100},
    "colsample_bytree": {"low": 0.5, "high": 1.0},
}
TUNE_FIXED = {"n_estimators": 100}


def make_data(rows: int, folder: Path) -> Path:
    """``rows`` x 20 float features and a binary label, as Parquet (fixed seed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / f"train-{rows}.parquet"
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, FEATURES))
    logit = X[:, 0] + 0.5 * X[:, 1] * X[:, 2] - np.abs(X[:, 3]) + np.sin(2 * X[:, 4])
    label = (logit + rng.normal(scale=1.0, size=rows) > 0).astype(np.int64)
    columns = {f"f{i}": X[:, i] for i in range(FEATURES)}
    pq.write_table(pa.table({**columns, "label": label}), path)
    return path


class Project:
    """A lockgate project folder with its own SQLite store, holding the data's pipeline."""

    def __init__(self, data: Path, folder: Path) -> None:
        from lockgate.metadata.store import SqlMetadataStore

        self.data, self.folder = data, folder
        folder.mkdir(parents=True, exist_ok=True)
        self.store = SqlMetadataStore(f"sqlite:///{folder / 'metadata.db'}")

    def run(self, last: Any = None, **extra: Any) -> Any:
        from lockgate import Pipeline
        from lockgate.components import (
            compute_statistics,
            fit_transform,
            infer_schema,
            ingest,
            train,
            tune,
        )
        from lockgate.core.run import run_pipeline

        examples = ingest(path=str(self.data), eval_fraction=0.2)
        stats = compute_statistics(examples=examples.outputs.examples)
        schema = infer_schema(statistics=stats.outputs.statistics)
        transform = fit_transform(
            examples=examples.outputs.examples, schema=schema.outputs.schema, label="label"
        )
        steps = [examples, stats, schema, transform]
        component = {"train": train, "tune": tune}.get(last)
        if component is not None:
            steps.append(
                component(
                    examples=examples.outputs.examples,
                    transform=transform.outputs.transform,
                    **extra,
                )
            )
        result = run_pipeline(
            Pipeline("bench", steps),
            store=self.store,
            artifact_root=self.folder / "artifacts",
            project_dir=self.folder,
        )
        if not result.ok:
            raise SystemExit(f"lockgate run failed: {result.error}")
        return result

    def matrices(self) -> tuple[np.ndarray, ...]:
        """(X, y, X_eval, y_eval) as lockgate's steps see them (transform applied)."""
        from lockgate.training.components import load_transform, prepare

        outputs = self.run()
        examples = outputs.steps["ingest"].outputs["examples"]
        graph = load_transform(outputs.steps["fit_transform"].outputs["transform"])
        _, X, y = prepare(examples, graph, "train")
        _, X_eval, y_eval = prepare(examples, graph, "eval")
        return X, y, X_eval, y_eval


def direct_fit(library: str, X: np.ndarray, y: np.ndarray, seed: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the library's own fit on arrays in memory."""
    import lightgbm
    import xgboost

    if library == "lightgbm":
        model: Any = lightgbm.LGBMClassifier(**LGBM_DEFAULTS, random_state=seed, **LGBM)
    else:
        model = xgboost.XGBClassifier(**XGB_DEFAULTS, random_state=seed, **XGB)
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(X, y)
    return time.perf_counter() - wall, time.process_time() - cpu


def script_fit(project: Project, library: str, seed: int) -> tuple[float, float]:
    """(wall, CPU) seconds of what a script does with the same data: read the train
    split's Parquet, stack the feature columns into a matrix, fit (no transform)."""
    import pyarrow.parquet as pq

    from lockgate.data.components import split_files

    examples = project.run().steps["ingest"].outputs["examples"]
    files = split_files(examples, "train")
    wall, cpu = time.perf_counter(), time.process_time()
    table = pq.read_table(files)
    features = [name for name in table.column_names if name.startswith("f")]
    X = np.column_stack([table.column(name).to_numpy() for name in features])
    y = table.column("label").to_numpy()
    read_wall, read_cpu = time.perf_counter() - wall, time.process_time() - cpu
    fit_wall, fit_cpu = direct_fit(library, X, y, seed)
    return read_wall + fit_wall, read_cpu + fit_cpu


def lockgate_train(project: Project, library: str, params: dict, seed: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the train step: its recorded duration, and the process's CPU
    time over the run less that of the same run served from the cache (the cached steps'
    fingerprints and lookups are the pipeline's, not the train step's)."""
    cpu = time.process_time()
    result = project.run("train", trainer=library, params=params, seed=seed)
    ran = time.process_time() - cpu
    cpu = time.process_time()
    project.run("train", trainer=library, params=params, seed=seed)  # all cached
    return result.steps["train"].duration_s, ran - (time.process_time() - cpu)


def bench_train(project: Project, repeat: int) -> None:
    X, y, _, _ = project.matrices()
    print(f"\n(a) train step vs direct fit: {len(y):,} train rows x {X.shape[1]} features")
    print(f"    LightGBM: LGBMClassifier(**{LGBM_DEFAULTS | LGBM}).fit(X, y)")
    print(f"    XGBoost:  XGBClassifier(**{XGB_DEFAULTS | XGB}).fit(X, y)")
    for library, params in (("lightgbm", LGBM), ("xgboost", XGB)):
        ours, theirs, scripts = [], [], []
        for seed in range(repeat):  # a new seed each time: a cache miss, the same work
            ours.append(lockgate_train(project, library, params, seed + 1))
            theirs.append(direct_fit(library, X, y, seed + 1))
            scripts.append(script_fit(project, library, seed + 1))
        for index, kind in ((0, "wall"), (1, "CPU")):
            a = _median(r[index] for r in ours)
            b = _median(r[index] for r in theirs)
            limit = 1.05 * b + 0.3
            print(
                f"    {library:<9} {kind:<4} lockgate {a:7.2f} s   direct {b:7.2f} s"
                f"   overhead {a - b:+.2f} s ({(a - b) / b:+.1%})   target <= 5% + 0.3 s ="
                f" {limit:.2f} s: {'met' if a <= limit else 'NOT met'}"
                f"   (runs: {_list([r[index] for r in ours])} / {_list([r[index] for r in theirs])})"
            )
            c = _median(r[index] for r in scripts)
            print(
                f"    {'':<9} {kind:<4} a script reading the same Parquet, then fitting:"
                f" {c:7.2f} s; lockgate {a - c:+.2f} s ({(a - c) / c:+.1%})"
                f"   (runs: {_list([r[index] for r in scripts])})"
            )


def plain_optuna(matrices: tuple[np.ndarray, ...], trials: int, pruning: bool) -> dict[str, Any]:
    """The peer: a plain Optuna loop over the same objective, in-memory storage."""
    import lightgbm
    import optuna
    from sklearn.metrics import log_loss

    from lockgate.training.tuning import make_pruner, parse_space, suggest

    X, y, X_eval, y_eval = matrices
    dimensions = parse_space(SPACE)
    rounds = 0

    def objective(trial: optuna.Trial) -> float:
        nonlocal rounds
        params = suggest(trial, dimensions)

        def callback(env: Any) -> None:
            nonlocal rounds
            rounds += 1
            trial.report(env.evaluation_result_list[0][2], env.iteration)
            if pruning and trial.should_prune():
                raise optuna.TrialPruned()

        model = lightgbm.LGBMClassifier(**LGBM_DEFAULTS, random_state=0, **TUNE_FIXED, **params)
        if "eval_X" in inspect.signature(model.fit).parameters:  # LightGBM >= 4.6
            model.fit(X, y, eval_X=(X_eval,), eval_y=(y_eval,), callbacks=[callback])
        else:
            model.fit(X, y, eval_set=[(X_eval, y_eval)], callbacks=[callback])
        return float(log_loss(y_eval, model.predict_proba(X_eval), labels=[0, 1]))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        sampler=optuna.samplers.TPESampler(seed=0),
        pruner=make_pruner() if pruning else optuna.pruners.NopPruner(),
    )
    started = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return {"wall": time.perf_counter() - started, "best": study.best_value, "rounds": rounds}


def lockgate_tune(project: Project, trials: int, pruning: bool, name: str) -> dict[str, Any]:
    result = project.run(
        "tune",
        search_space=SPACE,
        params=TUNE_FIXED,
        n_trials=trials,
        pruning=pruning,
        study_name=name,
    )
    step = result.steps["tune"]
    props = step.outputs["hyperparameters"].properties
    return {
        "wall": step.duration_s,
        "best": props["best_value"],
        "rounds": props["rounds"],
        "pruned": props["pruned"],
    }


def bench_tune(project: Project, trials: int, repeat: int, skip_unpruned: bool) -> None:
    matrices = project.matrices()
    print(
        f"\n(b) tune, {trials} trials, pruning on: {len(matrices[1]):,} train rows,"
        f" {len(matrices[3]):,} eval rows; space {SPACE}, fixed {TUNE_FIXED}"
    )
    print(
        "    peer: optuna.create_study(sampler=TPESampler(seed=0), pruner=the same) in memory,"
        " LGBMClassifier with the same parameters and a reporting callback, sklearn log_loss"
    )
    stamp = int(time.time())
    ours, theirs = [], []
    for index in range(repeat):
        ours.append(lockgate_tune(project, trials, True, f"bench-{stamp}-{index}"))
        theirs.append(plain_optuna(matrices, trials, True))
    a = _median(r["wall"] for r in ours)
    b = _median(r["wall"] for r in theirs)
    print(
        f"    lockgate {a:7.2f} s   plain Optuna {b:7.2f} s   overhead {(a - b) / b:+.1%}"
        f"   target <= 10%: {'met' if a <= 1.10 * b else 'NOT met'}"
        f"   (runs: {_list([r['wall'] for r in ours])} / {_list([r['wall'] for r in theirs])})"
    )
    print(
        f"    best log_loss: lockgate {ours[0]['best']:.5f}, plain Optuna {theirs[0]['best']:.5f};"
        f" rounds: {ours[0]['rounds']} / {theirs[0]['rounds']}"
    )
    if skip_unpruned:
        return
    off = lockgate_tune(project, trials, False, f"bench-{stamp}-unpruned")
    on = ours[0]
    ratio = off["rounds"] / max(on["rounds"], 1)
    loss = (on["best"] - off["best"]) / off["best"]
    print(
        f"\n(c) lockgate tune, {trials} trials, pruning on against off"
        " (successive halving from round 10, the best third promoted)"
    )
    print(
        f"    rounds: on {on['rounds']} ({on['pruned']} trials pruned), off {off['rounds']}:"
        f" {ratio:.2f}x fewer, target >= 2x: {'met' if ratio >= 2 else 'NOT met'}"
    )
    print(
        f"    best log_loss: on {on['best']:.5f}, off {off['best']:.5f}: {loss:+.2%},"
        f" target within 1%: {'met' if loss <= 0.01 else 'NOT met'}"
        f"   (wall: on {on['wall']:.1f} s, off {off['wall']:.1f} s)"
    )


def _median(values: Any) -> float:
    # not the statistics module: bench/statistics.py shadows it when run from bench/
    return float(np.median(list(values)))


def _list(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for (a)")
    parser.add_argument("--tune-rows", type=int, default=100_000, help="rows for (b), (c)")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3, help="cells per side in (a)")
    parser.add_argument("--tune-repeat", type=int, default=1, help="cells per side in (b)")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/lockgate-bench"))
    parser.add_argument(
        "--skip", choices=("train", "tune", "unpruned"), action="append", default=[]
    )
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lockgate-bench-") as tmp:
        if "train" not in args.skip:
            data = make_data(args.rows, args.data_dir)
            bench_train(Project(data, Path(tmp) / "train"), args.repeat)
        if "tune" not in args.skip:
            data = make_data(args.tune_rows, args.data_dir)
            project = Project(data, Path(tmp) / "tune")
            bench_tune(project, args.trials, args.tune_repeat, "unpruned" in args.skip)


if __name__ == "__main__":
    main()
