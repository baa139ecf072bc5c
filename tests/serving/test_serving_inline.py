"""Fast models answer on the event loop, slow ones in worker threads: the inline policy on
its own, and through a real uvicorn with models that say which thread answered."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np

from lockgate.serving.app import create_app
from lockgate.serving.inline import MAX_PROBE_EVERY, InlinePolicy
from lockgate.serving.repository import ModelRepository
from lockgate.serving.servable import TensorSpec

Serve = Callable[[Any], str]
BUDGET = 0.002


def _answers(policy: InlinePolicy, model: object, calls: int, **costs: Any) -> list[bool]:
    """Send ``calls`` small requests; each answer costs ``costs``; True where inline."""
    inline = []
    for _ in range(calls):
        alone = policy.allows(model, 100)
        inline.append(alone)
        policy.observe(model, 100, alone=alone or costs.get("alone", False),
                       wall_s=costs["wall_s"], cpu_s=costs["cpu_s"])  # fmt: skip
    return inline


class Model:
    """Stands for a servable: the policy only keys on it."""


def test_a_model_never_seen_goes_to_a_thread_and_a_cheap_one_comes_inline() -> None:
    policy, model = InlinePolicy(budget_s=BUDGET), Model()
    assert not policy.allows(model, 100)
    inline = _answers(policy, model, 10, wall_s=0.0003, cpu_s=0.0003, alone=True)
    assert inline == [False] + [True] * 9


def test_under_load_a_cheap_model_is_probed_inline_and_then_stays() -> None:
    """No thread call runs alone under load; CPU time says the model is cheap, one probe
    on the loop shows it does not wait, and from then on it answers inline."""
    policy, model = InlinePolicy(budget_s=BUDGET), Model()
    policy.observe(model, 100, wall_s=0.009, cpu_s=0.0004, alone=False)  # GIL waits
    inline = _answers(policy, model, 5, wall_s=0.0004, cpu_s=0.0004)
    assert inline == [True] * 5


def test_a_model_that_waits_is_probed_ever_more_rarely() -> None:
    policy, model = InlinePolicy(budget_s=BUDGET), Model()
    policy.observe(model, 100, wall_s=0.05, cpu_s=0.0001, alone=False)
    inline = _answers(policy, model, 200, wall_s=0.05, cpu_s=0.0001)
    probes = [i for i, on in enumerate(inline) if on]
    assert probes == [0, 2, 6, 14, 30, 62, 126]  # each gap twice the last
    assert MAX_PROBE_EVERY > 64  # the back-off had room to go on


def test_expensive_models_and_large_bodies_stay_in_threads() -> None:
    policy, model = InlinePolicy(budget_s=BUDGET, max_body_bytes=1000), Model()
    assert not any(_answers(policy, model, 20, wall_s=0.01, cpu_s=0.01, alone=True))
    cheap = Model()
    _answers(policy, cheap, 3, wall_s=0.0001, cpu_s=0.0001, alone=True)
    assert policy.allows(cheap, 1000) and not policy.allows(cheap, 1001)


def test_one_answer_that_hangs_sends_a_fast_model_back_to_threads_at_once() -> None:
    policy, model = InlinePolicy(budget_s=BUDGET), Model()
    assert _answers(policy, model, 20, wall_s=0.0002, cpu_s=0.0002, alone=True)[-1]
    policy.observe(model, 100, wall_s=0.5, cpu_s=0.0001, alone=True)  # began to hang
    assert not policy.allows(model, 100)


class Recorder:
    """A servable that notes, per answer, whether it ran on the event loop's thread."""

    platform = "test"
    inputs = [TensorSpec("x", "FP64", [-1])]
    outputs = [TensorSpec("y", "FP64", [-1])]

    def __init__(self, name: str, hold: threading.Event | None = None) -> None:
        self.name, self.version = name, "1"
        self.hold = hold
        self.on_loop: list[bool] = []

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            asyncio.get_running_loop()
            self.on_loop.append(True)
        except RuntimeError:
            self.on_loop.append(False)
        if self.hold is not None:
            self.hold.wait(0.05)  # waits, as a model on a device or a remote call does
        return {"y": np.asarray(columns["x"]) * 2}


def _body(x: float) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [x]}]}


def test_through_uvicorn_a_fast_model_answers_on_the_loop_a_waiting_one_in_threads(
    serve_app: Serve,
) -> None:
    fast, waiting = Recorder("fast"), Recorder("waiting", hold=threading.Event())
    url = serve_app(create_app(ModelRepository([fast, waiting])))
    with httpx.Client(base_url=url) as http:
        for i in range(30):
            for name in ("fast", "waiting"):
                answer = http.post(f"/v2/models/{name}/infer", json=_body(float(i)))
                assert answer.status_code == 200
                assert answer.json()["outputs"][0]["data"] == [2.0 * i]
    assert fast.on_loop[0] is False and all(fast.on_loop[1:])  # first call: not yet known
    assert sum(waiting.on_loop) <= 4  # probes at calls 2, 4, 8, 16 at most
    assert waiting.on_loop.count(False) >= 26
