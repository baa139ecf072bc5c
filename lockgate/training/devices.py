"""Where a trainer fits: ``device="cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when the
framework can use it and a GPU is present, else the CPU with a note saying why).

The GPU is found without importing a deep-learning library: ``nvidia-smi -L`` lists the
GPUs the driver sees, which is what XGBoost and PyTorch would use."""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass

from lockgate.errors import ConfigError

DEVICES = ("cpu", "cuda", "auto")


@dataclass(frozen=True)
class Device:
    """The device a fit runs on, and the line that says why when it is not the asked one."""

    name: str
    note: str | None = None


@functools.cache
def cuda_gpus() -> tuple[str, ...]:
    """The CUDA GPUs the NVIDIA driver lists (empty without a driver or a GPU)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        done = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return ()
    if done.returncode != 0:
        return ()
    return tuple(line.strip() for line in done.stdout.splitlines() if line.startswith("GPU "))


def resolve_device(requested: str, *, trainer: str, supported: tuple[str, ...]) -> Device:
    """The device for ``trainer`` (whose framework fits on ``supported``); ``"cuda"``
    without a GPU or on a CPU-only framework is a ConfigError, ``"auto"`` falls back."""
    if requested not in DEVICES:
        raise ConfigError(f"device must be one of {list(DEVICES)}; got {requested!r}")
    if requested == "cpu":
        return Device("cpu")
    can_cuda = "cuda" in supported
    if requested == "cuda":
        if not can_cuda:
            raise ConfigError(
                f"trainer '{trainer}' trains on the CPU only, so device='cuda' cannot be met",
                hint="use device='auto' (CUDA where the trainer can, else the CPU), or an"
                " XGBoost or PyTorch trainer for the GPU",
            )
        if not cuda_gpus():
            raise ConfigError(
                "device='cuda' but this machine has no CUDA GPU (nvidia-smi finds none)",
                hint="use device='auto' to fall back to the CPU, or run on a machine with a GPU",
            )
        return Device("cuda")
    if not can_cuda:
        return Device("cpu", f"device='auto': trainer '{trainer}' trains on the CPU only")
    if not cuda_gpus():
        return Device("cpu", "device='auto': no CUDA GPU found, training on the CPU")
    return Device("cuda")
