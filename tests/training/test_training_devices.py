"""Where a trainer fits: ``device="auto"`` falls back to the CPU with one line saying so,
``"cuda"`` without a GPU (or on a CPU-only trainer) fails clearly, before any fitting."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from support import lockgate

from lockgate.errors import ConfigError
from lockgate.training.devices import cuda_gpus, resolve_device

no_gpu = pytest.mark.skipif(bool(cuda_gpus()), reason="this machine has a CUDA GPU")


def test_cpu_is_taken_as_asked_and_a_bad_device_is_named() -> None:
    assert resolve_device("cpu", trainer="xgboost", supported=("cpu", "cuda")).name == "cpu"
    with pytest.raises(
        ConfigError, match=r"device must be one of \['cpu', 'cuda', 'auto'\]; got 'gpu'"
    ):
        resolve_device("gpu", trainer="xgboost", supported=("cpu", "cuda"))


def test_auto_on_a_cpu_only_trainer_says_so() -> None:
    chosen = resolve_device("auto", trainer="lightgbm", supported=("cpu",))
    assert chosen.name == "cpu"
    assert chosen.note == "device='auto': trainer 'lightgbm' trains on the CPU only"


def test_cuda_on_a_cpu_only_trainer_is_refused() -> None:
    with pytest.raises(ConfigError, match="trainer 'random_forest' trains on the CPU only"):
        resolve_device("cuda", trainer="random_forest", supported=("cpu",))


@no_gpu
def test_auto_without_a_gpu_falls_back_and_cuda_fails() -> None:
    chosen = resolve_device("auto", trainer="xgboost", supported=("cpu", "cuda"))
    assert (chosen.name, chosen.note) == (
        "cpu",
        "device='auto': no CUDA GPU found, training on the CPU",
    )
    with pytest.raises(ConfigError, match="no CUDA GPU") as raised:
        resolve_device("cuda", trainer="xgboost", supported=("cpu", "cuda"))
    assert "device='auto'" in (raised.value.hint or "")


def run_xgboost_on(project: Path, device: str) -> subprocess.CompletedProcess[str]:
    """``lockgate run`` of the penguins project training XGBoost with ``device``."""
    trainer = ["train.trainer=xgboost", 'train.params={"n_estimators": 20}']
    sets = [arg for value in [*trainer, f"train.device={device}"] for arg in ("--set", value)]
    return lockgate("run", *sets, cwd=project)


@no_gpu
def test_a_pipeline_with_device_auto_trains_on_the_cpu_and_says_so(
    penguins_project: Path,
) -> None:
    done = run_xgboost_on(penguins_project, "auto")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("Training:")]
    assert lines == ["Training: device='auto': no CUDA GPU found, training on the CPU"]


@no_gpu
def test_a_pipeline_with_device_cuda_fails_at_train_before_fitting(penguins_project: Path) -> None:
    done = run_xgboost_on(penguins_project, "cuda")
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "no CUDA GPU" in output and "Traceback" not in output
    assert re.search(r"train\s+failed", output), output
