"""The PyTorch framework: torch_mlp and the user's own nn.Module, trained by one seeded loop,
saved as safetensors with the architecture in its header, and loaded without unpickling."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from lockgate.errors import ConfigError, ModelError, ModelIntegrityError, UntrustedModelError
from lockgate.training import devices
from lockgate.training.frameworks import get_framework
from lockgate.training.model_files import META_FILE, load_model, save_model
from lockgate.training.model_import import import_model_files
from lockgate.training.trainers import train_model, trainer_device
from lockgate.training.transform import TransformGraph, drop_missing_label

torch = pytest.importorskip("torch")

FAST = {"epochs": 30, "hidden_layers": [16], "learning_rate": 0.01}


def _split(penguins_split: tuple[pa.Table, pa.Table], label: str):  # type: ignore[no-untyped-def]
    train, evaluation = (drop_missing_label(t, label) for t in penguins_split)
    graph = TransformGraph.fit(train, label=label)
    return (
        graph.apply(train),
        graph.encode_label(train),
        graph.apply(evaluation),
        graph.encode_label(evaluation),
    )


@pytest.fixture(scope="module")
def species(penguins_split):  # type: ignore[no-untyped-def]
    return _split(penguins_split, "species")


@pytest.fixture(scope="module")
def mass(penguins_split):  # type: ignore[no-untyped-def]
    return _split(penguins_split, "body_mass_g")


def _eval_loss(model, X: np.ndarray, y: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    proba = model.predict_proba(X)
    return float(-np.mean(np.log(proba[np.arange(len(y)), y])))


def test_torch_mlp_classifies_and_regresses_penguins(species, mass, tmp_path: Path) -> None:
    X, y, X_eval, y_eval = species
    model = train_model(X, y, spec="torch_mlp", params=FAST, task="classification", seed=1)
    assert np.mean(model.predict(X_eval) == y_eval) > 0.9
    proba = model.predict_proba(X_eval)
    assert proba.shape == (len(y_eval), 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    info = save_model(model, tmp_path / "clf")
    assert (info.framework, info.file, info.classes) == ("pytorch", "model.safetensors", [0, 1, 2])
    loaded = load_model(tmp_path / "clf")
    np.testing.assert_array_equal(loaded.predict_proba(X_eval), proba)

    X, y, X_eval, y_eval = mass
    model = train_model(X, y, spec="torch_mlp", params={"epochs": 60}, task="regression", seed=1)
    predicted = model.predict(X_eval)
    r2 = 1 - np.sum((y_eval - predicted) ** 2) / np.sum((y_eval - y_eval.mean()) ** 2)
    assert r2 > 0.75, r2
    save_model(model, tmp_path / "reg")
    np.testing.assert_allclose(load_model(tmp_path / "reg").predict(X_eval), predicted)


def test_the_same_seed_gives_the_same_file_and_another_seed_another(
    species, tmp_path: Path
) -> None:
    X, y, _, _ = species
    params = {**FAST, "dropout": 0.2}

    def sha256(seed: int, folder: str) -> str:
        model = train_model(X, y, spec="torch_mlp", params=params, task="classification", seed=seed)
        return save_model(model, tmp_path / folder).sha256

    first = sha256(4, "a")
    assert sha256(4, "b") == first
    assert sha256(5, "c") != first
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (
        tmp_path / "b" / "model.safetensors"
    ).read_bytes()
    # parallel steps in one process (the local runner's threads) do not mix their draws
    with ThreadPoolExecutor(max_workers=2) as pool:
        both = list(pool.map(sha256, [4, 5], ["d", "e"]))
    assert both == [first, sha256(5, "f")]


def test_early_stopping_keeps_the_best_epoch(species, tmp_path: Path) -> None:
    X, y, X_eval, y_eval = species
    params = {"epochs": 300, "learning_rate": 0.05, "early_stopping_rounds": 4}
    model = train_model(
        X, y, spec="torch_mlp", params=params, task="classification", eval_set=(X_eval, y_eval)
    )
    losses = model.eval_losses_
    assert len(losses) < 300  # it stopped
    best = int(np.argmin(losses))
    assert model.best_iteration_ == best + 1
    assert len(losses) == best + 1 + 4  # patience epochs after the best
    save_model(model, tmp_path)
    kept = load_model(tmp_path)  # the saved weights are the best epoch's
    assert _eval_loss(kept, X_eval, y_eval) == pytest.approx(min(losses), rel=1e-4)
    assert _eval_loss(kept, X_eval, y_eval) < losses[-1]


def test_report_gets_each_epochs_eval_loss_and_may_stop_the_fit(species) -> None:
    X, y, X_eval, y_eval = species
    seen: list[tuple[int, float]] = []
    model = train_model(
        X,
        y,
        spec="torch_mlp",
        params={"epochs": 5},
        task="classification",
        eval_set=(X_eval, y_eval),
        report=lambda epoch, loss: seen.append((epoch, loss)),
    )
    assert [epoch for epoch, _ in seen] == [0, 1, 2, 3, 4]
    assert [loss for _, loss in seen] == model.eval_losses_

    class Pruned(RuntimeError):  # passed on as it is, not taken for a failed fit
        pass

    def prune(epoch: int, loss: float) -> None:
        if epoch == 2:
            raise Pruned

    with pytest.raises(Pruned):
        train_model(
            X,
            y,
            spec="torch_mlp",
            params={"epochs": 50},
            task="classification",
            eval_set=(X_eval, y_eval),
            report=prune,
        )


def test_sample_weights_change_the_model(species) -> None:
    X, y, X_eval, _ = species
    plain = train_model(X, y, spec="torch_mlp", params=FAST, task="classification")
    weights = np.where(y == 1, 20.0, 1.0)  # Chinstrap counts twenty times
    weighted = train_model(
        X, y, spec="torch_mlp", params=FAST, task="classification", sample_weight=weights
    )
    assert not np.allclose(plain.predict_proba(X_eval), weighted.predict_proba(X_eval))
    assert weighted.predict_proba(X_eval)[:, 1].mean() > plain.predict_proba(X_eval)[:, 1].mean()


def test_warm_start_continues_from_the_base_weights(species, tmp_path: Path) -> None:
    X, y, X_eval, y_eval = species
    watched = (X_eval, y_eval)
    base = train_model(X, y, spec="torch_mlp", params={"epochs": 3}, task="classification")
    save_model(base, tmp_path)
    loaded = load_model(tmp_path).model  # what warm start gets: the framework's loaded model
    before = _eval_loss(base, X_eval, y_eval)

    # a learning rate of ~0 keeps the weights where they started: exactly the base's
    still = train_model(
        X,
        y,
        spec="torch_mlp",
        params={"epochs": 1, "learning_rate": 1e-12},
        task="classification",
        seed=9,
        base_model=loaded,
        base_framework="pytorch",
    )
    np.testing.assert_allclose(still.predict_proba(X_eval), base.predict_proba(X_eval), atol=1e-6)

    first_losses: list[float] = []
    continued = train_model(
        X,
        y,
        spec="torch_mlp",
        params={"epochs": 10},
        task="classification",
        seed=9,
        eval_set=watched,
        base_model=loaded,
        base_framework="pytorch",
        report=lambda epoch, loss: first_losses.append(loss),
    )
    fresh = train_model(X, y, spec="torch_mlp", params={"epochs": 1}, task="classification", seed=9)
    assert first_losses[0] < _eval_loss(fresh, X_eval, y_eval)  # started from the base
    assert _eval_loss(continued, X_eval, y_eval) <= before


def test_warm_start_refuses_another_architecture(species, mass, tmp_path: Path) -> None:
    X, y, _, _ = species
    base = train_model(X, y, spec="torch_mlp", params={"epochs": 1}, task="classification")
    save_model(base, tmp_path)
    loaded = load_model(tmp_path).model
    with pytest.raises(
        ConfigError, match=r"architecture differs.*hidden_layers \[64, 32\] \(base\) against \[16\]"
    ):
        train_model(
            X,
            y,
            spec="torch_mlp",
            params={"epochs": 1, "hidden_layers": [16]},
            task="classification",
            base_model=loaded,
            base_framework="pytorch",
        )
    with pytest.raises(ConfigError, match=r"activation 'relu' \(base\) against 'tanh'"):
        train_model(
            X,
            y,
            spec="torch_mlp",
            params={"epochs": 1, "activation": "tanh"},
            task="classification",
            base_model=loaded,
            base_framework="pytorch",
        )
    with pytest.raises(ConfigError, match="warm start continues a model of the same framework"):
        train_model(
            X,
            y,
            spec="lightgbm",
            task="classification",
            base_model=loaded,
            base_framework="pytorch",
        )


def test_unknown_and_bad_parameters_are_named(species) -> None:
    X, y, _, _ = species
    with pytest.raises(
        ConfigError, match=r"unknown parameter 'hiden_layers'.*did you mean 'hidden_layers'"
    ):
        train_model(X, y, spec="torch_mlp", params={"hiden_layers": [8]}, task="classification")
    with pytest.raises(ConfigError, match=r"The 'epochs' parameter .* must be an integer >= 1"):
        train_model(X, y, spec="torch_mlp", params={"epochs": 0}, task="classification")
    with pytest.raises(ConfigError, match=r"'activation' .* Got 'rellu'.*did you mean 'relu'"):
        train_model(X, y, spec="torch_mlp", params={"activation": "rellu"}, task="classification")
    with pytest.raises(ConfigError, match="'hidden_layers' parameter .* list of layer widths"):
        train_model(X, y, spec="torch_mlp", params={"hidden_layers": 8}, task="classification")
    with pytest.raises(ConfigError, match="early_stopping_rounds needs the eval split"):
        train_model(
            X, y, spec="torch_mlp", params={"early_stopping_rounds": 3}, task="classification"
        )


def test_auto_falls_back_to_the_cpu_with_a_note_and_cuda_needs_a_gpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(devices, "cuda_gpus", lambda: ())
    chosen = trainer_device("torch_mlp", "classification", "auto")
    assert chosen == devices.Device("cpu", "device='auto': no CUDA GPU found, training on the CPU")
    with pytest.raises(ConfigError, match="device='cuda' but this machine has no CUDA GPU"):
        trainer_device("torch_mlp", "regression", "cuda")
    monkeypatch.setattr(devices, "cuda_gpus", lambda: ("GPU 0: test",))
    assert trainer_device("torch_mlp", "regression", "auto") == devices.Device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_trains_and_the_file_is_saved_from_cpu_tensors(species, tmp_path: Path) -> None:
    X, y, X_eval, y_eval = species
    model = train_model(X, y, spec="torch_mlp", params=FAST, task="classification", device="cuda")
    assert next(model.module.parameters()).device.type == "cpu"
    assert np.mean(model.predict(X_eval) == y_eval) > 0.9
    save_model(model, tmp_path)
    np.testing.assert_allclose(
        load_model(tmp_path).predict_proba(X_eval), model.predict_proba(X_eval)
    )


USER_MODULE = '''
    import torch


    class Twin(torch.nn.Module):
        """Two linear branches added: a module no Sequential of the MLP's describes."""

        def __init__(self, n_features, n_outputs, width):
            super().__init__()
            self.deep = torch.nn.Sequential(
                torch.nn.Linear(n_features, width), torch.nn.Tanh(), torch.nn.Linear(width, n_outputs)
            )
            self.wide = torch.nn.Linear(n_features, n_outputs)

        def forward(self, x):
            return self.deep(x) + self.wide(x)


    def build(n_features, n_outputs, params):
        return Twin(n_features, n_outputs, params["width"])


    def not_a_module(n_features, n_outputs, params):
        return "a string"


    def wrong_width(n_features, n_outputs, params):
        return torch.nn.Linear(n_features + 1, n_outputs)
'''


@pytest.fixture
def user_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    package = tmp_path / "site" / "mynets"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield package
    for name in ("mynets", "mynets.models"):
        sys.modules.pop(name, None)


def test_the_users_own_module_trains_saves_and_loads_by_its_function(
    user_package: Path, species, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y, X_eval, y_eval = species
    spec = "pytorch:mynets.models:build"
    model = train_model(
        X,
        y,
        spec=spec,
        params={"width": 8, "epochs": 20, "learning_rate": 0.01},
        task="classification",
        seed=2,
    )
    assert type(model.module).__name__ == "Twin"
    assert np.mean(model.predict(X_eval) == y_eval) > 0.9
    info = save_model(model, tmp_path / "model")
    assert info.trusted_types == ["mynets.models.build"]  # naming it as the trainer trusts it
    loaded = load_model(tmp_path / "model")
    assert type(loaded.model.module).__name__ == "Twin"
    np.testing.assert_array_equal(loaded.predict_proba(X_eval), model.predict_proba(X_eval))
    architecture = loaded.model.architecture["module"]
    assert architecture == {
        "kind": "function",
        "function": "mynets.models:build",
        "params": {"width": 8},
    }

    with pytest.raises(UntrustedModelError, match="function 'mynets.models.build'.*not trusted"):
        load_model(tmp_path / "model", trusted=[])
    file = tmp_path / "model" / "model.safetensors"
    with pytest.raises(UntrustedModelError, match="'mynets.models.build', which is not") as refused:
        import_model_files(file, tmp_path / "imported")
    assert "--trust mynets.models.build" in str(refused.value.hint)
    imported = import_model_files(file, tmp_path / "imported2", trust=["mynets.models.build"])
    assert imported.trusted_types == ["mynets.models.build"] and imported.classes == [0, 1, 2]

    for name in ("mynets", "mynets.models"):
        sys.modules.pop(name, None)
    monkeypatch.syspath_prepend(str(tmp_path / "elsewhere"))
    monkeypatch.setattr(sys, "path", [p for p in sys.path if not p.endswith("site")])
    with pytest.raises(ModelError, match="cannot import the function 'mynets.models:build'"):
        load_model(tmp_path / "model")


def test_a_users_function_must_build_a_module(user_package: Path, species) -> None:
    X, y, _, _ = species
    with pytest.raises(ModelError, match="not_a_module returned str, not a torch.nn.Module"):
        train_model(X, y, spec="pytorch:mynets.models:not_a_module", task="classification")
    with pytest.raises(ModelError, match="cannot import the function 'mynets.nope:build'"):
        train_model(X, y, spec="pytorch:mynets.nope:build", task="classification")
    with pytest.raises(ModelError, match="'pytorch:mynets.models:wrong_width' failed to fit"):
        train_model(X, y, spec="pytorch:mynets.models:wrong_width", task="classification")
    with pytest.raises(ConfigError, match=r"'epoch' .* go to your function; did you mean 'epochs'"):
        train_model(
            X, y, spec="pytorch:mynets.models:build", params={"epoch": 3}, task="classification"
        )
    with pytest.raises(ConfigError, match="as 'package.module:function'"):
        train_model(X, y, spec="pytorch:mynets.models", task="classification")


class _Payload:
    """Writes a marker file when unpickled: the proof that something ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.mkdir, (str(self.marker),))


def test_a_crafted_pickle_is_refused_at_import_and_at_load(species, tmp_path: Path) -> None:
    live = tmp_path / "live-marker"
    pickle.loads(pickle.dumps(_Payload(live)))
    assert live.exists()  # the payload is real: unpickling it writes its marker

    marker = tmp_path / "marker"
    payload = tmp_path / "model.pt"
    torch.save({"weight": torch.zeros(2), "trap": _Payload(marker)}, payload)
    with pytest.raises(ModelError, match=r"looks like a pickle \(\.pt\)"):
        import_model_files(payload, tmp_path / "a")
    renamed = tmp_path / "model.safetensors"
    renamed.write_bytes(payload.read_bytes())
    with pytest.raises(ModelError, match="is a PyTorch or pickle archive.*never loads pickles"):
        import_model_files(renamed, tmp_path / "b")
    raw = tmp_path / "raw.safetensors"
    raw.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ModelError, match="is a pickle"):
        import_model_files(raw, tmp_path / "c")

    # a pipeline's model folder whose file was swapped and its sha256 updated to match
    X, y, _, _ = species
    model = train_model(X, y, spec="torch_mlp", params={"epochs": 1}, task="classification")
    folder = tmp_path / "model"
    save_model(model, folder)
    for swapped in (payload.read_bytes(), raw.read_bytes()):
        (folder / "model.safetensors").write_bytes(swapped)
        meta = json.loads((folder / META_FILE).read_text())
        meta["sha256"] = hashlib.sha256(swapped).hexdigest()
        (folder / META_FILE).write_text(json.dumps(meta))
        with pytest.raises(ModelError, match="lockgate never loads pickles"):
            load_model(folder)
    assert not marker.exists()


def test_a_truncated_or_changed_file_is_refused_clearly(species, tmp_path: Path) -> None:
    X, y, _, _ = species
    model = train_model(X, y, spec="torch_mlp", params={"epochs": 1}, task="classification")
    info = save_model(model, tmp_path)
    path = tmp_path / "model.safetensors"
    whole = path.read_bytes()

    path.write_bytes(whole[:-10] + b"0123456789")
    with pytest.raises(ModelIntegrityError, match=f"model file {path} has sha256 .* expected"):
        load_model(tmp_path)

    def reseal(data: bytes) -> None:
        path.write_bytes(data)
        meta = json.loads((tmp_path / META_FILE).read_text())
        meta["sha256"] = hashlib.sha256(data).hexdigest()
        (tmp_path / META_FILE).write_text(json.dumps(meta))

    reseal(whole[:200])  # cut inside the header
    with pytest.raises(ModelError, match=r"is truncated: its header says \d+ bytes"):
        load_model(tmp_path)
    reseal(whole[:-100])  # the header whole, the tensors cut
    with pytest.raises(ModelError, match="holds no readable safetensors weights"):
        load_model(tmp_path)
    reseal(b"not a model at all")
    with pytest.raises(ModelError, match="is not a safetensors file"):
        load_model(tmp_path)
    reseal(whole)
    assert load_model(tmp_path, sha256=info.sha256).predict(X).shape == (len(X),)


def test_weights_without_lockgates_architecture_are_refused_on_import(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "bare.safetensors"
    save_file({"weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ModelError, match="holds weights but no architecture"):
        import_model_files(path, tmp_path / "model")


def test_single_request_latency_is_small(species, tmp_path: Path) -> None:
    """The server calls predict_with_proba once per batch: a one-row batch stays cheap."""
    X, y, X_eval, _ = species
    model = train_model(X, y, spec="torch_mlp", params={"epochs": 1}, task="classification")
    save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    row = X_eval[:1]
    for _ in range(50):
        loaded.predict_with_proba(row)
    timings = []
    for _ in range(500):
        started = time.perf_counter()
        loaded.predict_with_proba(row)
        timings.append(time.perf_counter() - started)
    assert float(np.median(timings)) < 0.005, np.median(timings)  # ~0.1 ms measured


def test_without_torch_the_other_frameworks_work_and_torch_mlp_names_the_extra(
    tmp_path: Path,
) -> None:
    code = textwrap.dedent(
        """
        import sys

        class NotInstalled:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"torch", "safetensors"}:
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)

        sys.meta_path.insert(0, NotInstalled())
        import numpy as np
        from lockgate.errors import ModelError
        from lockgate.training.frameworks import frameworks
        from lockgate.training.trainers import train_model

        assert "pytorch" in frameworks()
        X, y = np.random.default_rng(0).normal(size=(40, 2)), np.arange(40) % 2
        train_model(X, y, spec="logistic_regression", task="classification")
        try:
            train_model(X, y, spec="torch_mlp", task="classification")
        except ModelError as exc:
            print(exc, "|", exc.hint)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert (
        'need torch and safetensors, which are not installed | pip install "lockgate[torch]"'
        in (done.stdout)
    )


def test_describe_reads_the_architecture(species, tmp_path: Path) -> None:
    X, y, _, _ = species
    model = train_model(X, y, spec="torch_mlp", params={"epochs": 1}, task="classification")
    save_model(model, tmp_path)
    framework = get_framework("pytorch")
    assert framework.describe(load_model(tmp_path).model) == (
        "classification",
        X.shape[1],
        [0, 1, 2],
    )
