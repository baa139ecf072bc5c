"""infra_validate: the candidate served by a real ``lockgate serve`` before it may be pushed.

TFX's InfraValidator loads a TensorFlow model in a sandboxed server and "does not care the
prediction was correct". This one serves any framework lockgate trains, from a registry of
its own (``infra_sandbox``), and checks that

- the server comes up within ``max_loading_time`` (else the reason carries its output),
- every request answers 200, over V2 JSON, V2 binary tensors and TF-Serving REST,
- the model metadata's inputs and outputs, and every answer's output names and shapes,
  are the candidate's signature,
- the served predictions equal the in-process ones (the transform and the model loaded as
  the evaluator loads them) on the same eval rows,
- load time, p99 latency and the server's peak RSS are within the limits given.

The verdict is an ``InfraBlessing`` (``infra_blessing.json``); a failure is a "not
blessed" with its reasons, never only an exception, and the server is always stopped.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from lockgate.core.artifacts import Examples, InfraBlessing, Model, TransformGraph
from lockgate.core.component import Input, Output, component

if TYPE_CHECKING:
    import numpy as np


@dataclass
class InfraVerdict:
    """What infra-validation found; ``to_dict`` is ``infra_blessing.json``."""

    blessed: bool = False
    checks: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    load_time_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    peak_rss_mb: float | None = None

    def check(self, name: str, passed: bool, detail: str) -> bool:
        self.checks.append({"check": name, "passed": bool(passed), "detail": detail})
        if not passed:
            self.reasons.append(f"{name}: {detail}")
        return passed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InfraLimits:
    """What the candidate must stay within; None: not checked."""

    max_loading_time: float = 60.0
    max_p99_latency_ms: float | None = None
    max_rss_mb: float | None = None
    rtol: float = 1e-6
    atol: float = 1e-9


def _warm_servers() -> None:
    """Start the server zygote while the steps before validation run (its imports take
    the seconds a server's start would)."""
    from lockgate.evaluation.server_zygote import warm

    warm()


@component(prepare=_warm_servers)
def infra_validate(
    model: Input[Model],
    transform: Input[TransformGraph],
    examples: Input[Examples],
    infra_blessing: Output[InfraBlessing],
    *,
    model_name: str = "candidate",
    max_loading_time: float = 60.0,
    n_requests: int = 30,
    rows_per_request: int = 8,
    max_p99_latency_ms: float | None = None,
    max_rss_mb: float | None = None,
) -> None:
    """Serve the candidate in a real ``lockgate serve`` with a registry of its own, send it
    requests built from eval rows over V2 (JSON, binary) and TF-Serving REST, and bless it
    only when it loads in time, answers every request with its signature, predicts what
    it predicts in process, and stays within the latency and memory limits."""
    verdict = validate_in_server(
        model,
        transform,
        examples,
        model_name=model_name,
        limits=InfraLimits(
            max_loading_time=max_loading_time,
            max_p99_latency_ms=max_p99_latency_ms,
            max_rss_mb=max_rss_mb,
        ),
        n_requests=n_requests,
        rows_per_request=rows_per_request,
    )
    path = infra_blessing.path / InfraBlessing.FILE_NAME
    path.write_text(json.dumps(verdict.to_dict(), indent=1) + "\n", encoding="utf-8")
    infra_blessing.properties.update(
        blessed=verdict.blessed,
        reasons=verdict.reasons,
        load_time_s=verdict.load_time_s,
        p99_ms=verdict.p99_ms,
        peak_rss_mb=verdict.peak_rss_mb,
    )


def validate_in_server(
    model: Model,
    transform: TransformGraph,
    examples: Examples,
    *,
    model_name: str = "candidate",
    limits: InfraLimits = InfraLimits(),
    n_requests: int = 30,
    rows_per_request: int = 8,
) -> InfraVerdict:
    """The checks of ``infra_validate`` as a function (no artifact written)."""
    from lockgate.errors import ConfigError, LockgateError
    from lockgate.evaluation.infra_sandbox import make_sandbox

    if n_requests < 3 or rows_per_request < 1:
        raise ConfigError(
            "The 'n_requests' parameter of infra_validate must be 3 or more (one per protocol)"
            f" and 'rows_per_request' 1 or more. Got {n_requests} and {rows_per_request}."
        )
    verdict = InfraVerdict()
    try:
        sandbox = make_sandbox(model, transform, model_name)
    except LockgateError as exc:  # push's own checks: the folder does not load or answer
        verdict.check("packaged", False, f"the candidate cannot be packaged to serve: {exc}")
        return verdict
    import httpx

    try:
        sandbox.start()  # the server boots while the expected answers are computed here
        try:
            expected = _in_process(model, transform, examples)
        except LockgateError as exc:
            verdict.check("in_process", False, f"no in-process answers to compare with: {exc}")
        else:
            _check_served(sandbox, expected, verdict, limits, n_requests, rows_per_request)
    except httpx.HTTPError as exc:  # the server went away or hung mid-way
        tail = sandbox.log_tail()
        verdict.check("answers_200", False, f"the server stopped answering ({exc}): {tail}")
    finally:
        sandbox.stop()
        shutil.rmtree(sandbox.folder, ignore_errors=True)
    verdict.blessed = not verdict.reasons
    return verdict


@dataclass
class _Expected:
    columns: dict[str, np.ndarray]  # request values per input, one per eval row
    inputs: list[Any]  # TensorSpec
    outputs: list[Any]  # TensorSpec
    answers: dict[str, np.ndarray]  # in-process outputs per eval row


def _in_process(model: Model, transform: TransformGraph, examples: Examples) -> _Expected:
    """The eval rows as request values, and the candidate's answers on them computed as the
    evaluator computes them: ``TransformGraph.apply`` on the table, then the model."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from lockgate.evaluation.components import load_candidate
    from lockgate.serving.servable import TensorSpec, label_tensor

    graph, table, loaded = load_candidate(model, transform, examples)
    inputs = [
        TensorSpec(name, "FP64" if kind == "numeric" else "BYTES", [-1])
        for name, kind in graph.features.items()
    ]
    columns: dict[str, np.ndarray] = {}
    for spec in inputs:
        column = table.column(spec.name)
        if spec.datatype == "FP64":
            values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
            columns[spec.name] = np.asarray(values, dtype=np.float64)
        else:
            text = column if pa.types.is_string(column.type) else pc.cast(column, pa.string())
            columns[spec.name] = np.array(text.to_pylist(), dtype=object)
    X = graph.apply(table)
    if graph.task == "classification":
        datatype, classes = label_tensor(list(graph.label_classes or []))
        predicted, proba = loaded.predict_with_proba(X)
        answers = {"predicted": classes[np.asarray(predicted).astype(np.int64)]}
        outputs = [TensorSpec("predicted", datatype, [-1])]
        if proba is not None:
            answers["probabilities"] = np.asarray(proba, dtype=np.float64)
            outputs.append(TensorSpec("probabilities", "FP64", [-1, len(classes)]))
    else:
        answers = {"predicted": np.asarray(loaded.predict(X), dtype=np.float64)}
        outputs = [TensorSpec("predicted", "FP64", [-1])]
    close = getattr(loaded, "close", None)
    if callable(close):
        close()
    return _Expected(columns, inputs, outputs, answers)


def _check_served(
    sandbox: Any,
    expected: _Expected,
    verdict: InfraVerdict,
    limits: InfraLimits,
    n_requests: int,
    rows_per_request: int,
) -> None:
    import httpx
    import numpy as np

    from lockgate.evaluation.infra_requests import build_requests, read_answer

    requests = build_requests(
        sandbox.model_name,
        expected.columns,
        expected.inputs,
        n_requests=n_requests,
        rows_per_request=rows_per_request,
    )
    ready = sandbox.wait(limits.max_loading_time)
    verdict.load_time_s = round(ready.load_time_s, 3)
    if not verdict.check(
        "loads", ready.ready, ready.reason or f"ready in {ready.load_time_s:.2f} s"
    ):
        return
    latencies: list[float] = []
    failures: list[str] = []
    mismatches: list[str] = []
    with httpx.Client(base_url=sandbox.url, timeout=30.0) as client:
        _check_metadata(client, sandbox.model_name, expected, verdict)
        for i, request in enumerate(requests):
            started = time.perf_counter()
            response = client.post(request.path, content=request.body, headers=request.headers)
            latencies.append((time.perf_counter() - started) * 1000.0)
            where = f"request {i} ({request.protocol})"
            if response.status_code != 200:
                failures.append(f"{where} answered {response.status_code}: {response.text[:200]}")
                continue
            answer = read_answer(request, response.content, response.headers)
            mismatches += _compare(where, answer, expected, request.rows, limits)
    verdict.check(
        "answers_200",
        not failures,
        f"{len(failures)} of {len(requests)} requests failed; first: {failures[0]}"
        if failures
        else f"{len(requests)} requests over V2 JSON, V2 binary and TF-Serving REST",
    )
    verdict.check(
        "predictions_match",
        not mismatches and not failures,
        "; ".join(mismatches[:3])
        + (f" (and {len(mismatches) - 3} more)" if len(mismatches) > 3 else "")
        if mismatches
        else (
            "not compared: requests failed"
            if failures
            else "served predictions equal the in-process predictions on every row"
        ),
    )
    verdict.p50_ms = round(float(np.percentile(latencies, 50)), 3)
    verdict.p99_ms = round(float(np.percentile(latencies, 99)), 3)
    verdict.peak_rss_mb = sandbox.peak_rss_mb()
    if verdict.peak_rss_mb is not None:
        verdict.peak_rss_mb = round(verdict.peak_rss_mb, 1)
    _check_limits(verdict, limits)


def _check_metadata(client: Any, name: str, expected: _Expected, verdict: InfraVerdict) -> None:
    response = client.get(f"/v2/models/{name}")
    if response.status_code != 200:
        verdict.check("signature", False, f"GET /v2/models/{name} answered {response.status_code}")
        return
    doc = response.json()
    want_in = [spec.to_json() for spec in expected.inputs]
    want_out = [spec.to_json() for spec in expected.outputs]
    got_in = [{k: t.get(k) for k in ("name", "datatype", "shape")} for t in doc.get("inputs", [])]
    got_out = [{k: t.get(k) for k in ("name", "datatype", "shape")} for t in doc.get("outputs", [])]
    problems = []
    if got_in != want_in:
        problems.append(f"inputs are {got_in}, the candidate's signature has {want_in}")
    if got_out != want_out:
        problems.append(f"outputs are {got_out}, the candidate's signature has {want_out}")
    verdict.check(
        "signature",
        not problems,
        "; ".join(problems) or "model metadata inputs and outputs match the signature",
    )


def _compare(
    where: str,
    answer: dict[str, np.ndarray],
    expected: _Expected,
    rows: np.ndarray,
    limits: InfraLimits,
) -> list[str]:
    import numpy as np

    want_names = [spec.name for spec in expected.outputs]
    if sorted(answer) != sorted(want_names):
        return [f"{where}: outputs {sorted(answer)}, expected {want_names}"]
    problems = []
    for name in want_names:
        want = expected.answers[name][rows]
        got = np.asarray(answer[name])
        if got.shape != want.shape:
            problems.append(
                f"{where}: output '{name}' has shape {list(got.shape)}, expected {list(want.shape)}"
            )
            continue
        if want.dtype.kind in "fc":
            same = np.isclose(
                got.astype(np.float64), want, rtol=limits.rtol, atol=limits.atol, equal_nan=True
            )
        else:
            same = np.array([str(a) == str(b) for a, b in zip(got, want, strict=True)])
        if not same.all():
            bad = np.flatnonzero(same.reshape(len(rows), -1).all(axis=1) == False)  # noqa: E712
            row = int(bad[0])
            problems.append(
                f"{where}: output '{name}' differs from in process on {len(bad)} of"
                f" {len(rows)} rows; eval row {int(rows[row])}: served {_show(got[row])},"
                f" in process {_show(want[row])}"
            )
    return problems


def _show(value: Any) -> str:
    import numpy as np

    if isinstance(value, np.ndarray):
        return np.array2string(value, precision=6, separator=", ")
    return repr(value.item() if isinstance(value, np.generic) else value)


def _check_limits(verdict: InfraVerdict, limits: InfraLimits) -> None:
    if limits.max_p99_latency_ms is not None:
        verdict.check(
            "p99_latency",
            verdict.p99_ms is not None and verdict.p99_ms <= limits.max_p99_latency_ms,
            f"p99 {verdict.p99_ms} ms against max_p99_latency_ms {limits.max_p99_latency_ms:g}",
        )
    if limits.max_rss_mb is not None:
        measured = verdict.peak_rss_mb
        verdict.check(
            "peak_rss",
            measured is not None and measured <= limits.max_rss_mb,
            f"peak RSS {measured} MiB against max_rss_mb {limits.max_rss_mb:g}"
            if measured is not None
            else "the server's peak RSS cannot be measured on this platform",
        )
