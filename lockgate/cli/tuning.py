"""A tune step's trials as text, for ``lockgate show``: the study, the best trial, and one
line per trial (number, state, value, rounds, parameters)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def render_trials(folder: Path) -> list[str]:
    """Lines describing the ``hyperparameters.json`` in ``folder``."""
    data = json.loads((folder / "hyperparameters.json").read_text(encoding="utf-8"))
    return [
        f"study {data.get('study_name')} in {data.get('storage')}",
        f"best: trial {data.get('best_trial')}  {data.get('metric')}={_value(data.get('best_value'))}"
        f" ({data.get('direction')})",
        f"params: {json.dumps(data.get('params', {}), sort_keys=True)}",
        "",
        *trial_table(data),
    ]


def trial_table(data: dict[str, Any]) -> list[str]:
    """A header and one line per trial of a ``hyperparameters.json``; the best marked *."""
    lines = [
        f"{'trial':>5}  {'state':<8}  {data.get('metric', 'value'):>12}  {'rounds':>6}  params"
    ]
    for trial in data.get("trials", []):
        mark = " *" if trial.get("number") == data.get("best_trial") else ""
        lines.append(
            f"{trial.get('number'):>5}  {trial.get('state', ''):<8}  {_value(trial.get('value')):>12}"
            f"  {trial.get('rounds') if trial.get('rounds') is not None else '-':>6}"
            f"  {json.dumps(trial.get('params', {}), sort_keys=True)}{mark}"
        )
    return lines


def _value(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, int | float) else "-"
