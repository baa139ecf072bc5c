"""What infra-validation adds to the demo's first run.

The penguins template's first `lockgate run` in a fresh project folder and a fresh process,
as `lockgate demo` runs it: once as shipped (with `infra_validate`: the candidate served by
a real `lockgate serve` in a sandbox, answering V2 JSON, V2 binary and TF-Serving requests,
compared with the in-process answers) and once with that step taken out (push then needs
the evaluator's blessing only). Interleaved with and without, ``--repeat`` times; medians.
The issue's target: infra-validation adds under 3 s. Also printed: the step's own time and
the server's load time, p50 and p99 latency and peak RSS, from the InfraBlessing.

Run: ``python bench/infra_validation.py [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import median_of

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE.parent / "lockgate" / "templates" / "penguins"
LOCKGATE = [sys.executable, "-m", "lockgate.cli.main"]


def without_infra(source: str) -> str:
    """The template's pipeline.py with the infra_validate step taken out."""
    source, steps = re.subn(
        r"\n    infra = infra_validate\(.*?\n    \)\n", "\n", source, flags=re.S
    )
    source, inputs = re.subn(
        r"\n        infra_blessing=infra\.outputs\.infra_blessing,", "", source
    )
    source, listed = re.subn(r"\(evaluation, infra, pushed\)", "(evaluation, pushed)", source)
    if (steps, inputs, listed) != (1, 1, 1):
        raise SystemExit("the template's pipeline.py changed: update without_infra()")
    return source


def first_run(folder: Path, *, infra: bool) -> dict[str, float | None]:
    """Wall seconds of a first `lockgate run` in a fresh copy of the template."""
    project = folder / ("with" if infra else "without")
    shutil.copytree(TEMPLATE, project, ignore=shutil.ignore_patterns("__pycache__"))
    if not infra:
        pipeline = project / "pipeline.py"
        pipeline.write_text(without_infra(pipeline.read_text()))
    started = time.perf_counter()
    result = subprocess.run([*LOCKGATE, "run"], cwd=project, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"lockgate run failed in {project}:\n{result.stdout}\n{result.stderr}")
    figures: dict[str, float | None] = {"wall": wall}
    if infra:
        step = re.search(r"infra_validate\s+complete\s+([\d.]+) s", result.stdout)
        figures["step"] = float(step.group(1)) if step else None
        verdicts = list((project / ".lockgate" / "artifacts").rglob("infra_blessing.json"))
        verdict = json.loads(verdicts[0].read_text())
        if not verdict["blessed"]:
            raise SystemExit(f"infra-validation refused the demo's model: {verdict['reasons']}")
        for key in ("load_time_s", "p50_ms", "p99_ms", "peak_rss_mb"):
            figures[key] = verdict[key]
    shutil.rmtree(project)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    runs: dict[bool, list[dict[str, float | None]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="lockgate-bench-infra-") as tmp:
        for index in range(args.repeat):
            for infra in (True, False) if index % 2 == 0 else (False, True):
                runs[infra].append(first_run(Path(tmp), infra=infra))
    walls = {infra: [r["wall"] or 0.0 for r in runs[infra]] for infra in runs}
    with_, without = median_of(walls[True]), median_of(walls[False])
    added = with_ - without
    print(f"penguins template, first `lockgate run`, fresh process, {args.repeat} runs a side")
    print(f"  with infra_validate    {with_:6.2f} s   (runs: {_list(walls[True])})")
    print(f"  without                {without:6.2f} s   (runs: {_list(walls[False])})")
    print(
        f"  added                  {added:+6.2f} s   target < 3 s: {'met' if added < 3 else 'NOT met'}"
    )
    for key, unit in (
        ("step", "s"),
        ("load_time_s", "s"),
        ("p50_ms", "ms"),
        ("p99_ms", "ms"),
        ("peak_rss_mb", "MiB"),
    ):
        values = [float(r[key]) for r in runs[True] if r.get(key) is not None]
        if values:
            print(f"  {key:<22} {median_of(values):8.2f} {unit}   (runs: {_list(values)})")


def _list(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
