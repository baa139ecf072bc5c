"""What every project command needs: settings, the store, and the pipeline file loaded."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

from lockgate.core.pipeline import Pipeline
from lockgate.errors import ConfigError, did_you_mean
from lockgate.metadata.store import SqlMetadataStore
from lockgate.settings import CONFIG_FILE, Settings


def load_settings(project_dir: str | Path, **overrides: Any) -> Settings:
    settings = Settings.load(project_dir, overrides=overrides)
    if not (settings.project_dir / CONFIG_FILE).exists() and not settings.pipeline_path.exists():
        raise ConfigError(
            f"{settings.project_dir} is not a lockgate project (no {CONFIG_FILE})",
            hint="create one with: lockgate init NAME, or try: lockgate demo",
        )
    return settings


def open_store(settings: Settings) -> SqlMetadataStore:
    return SqlMetadataStore(settings.resolved_store_url)


def write_store_settings(
    project_dir: Path, *, store_url: str | None = None, artifact_root: str | None = None
) -> None:
    """Set ``[store] url`` and ``artifact_root`` in the project's lockgate.toml (``lockgate
    init --store URL --artifacts URL``), keeping the file's comments and other settings:
    the file is the team's to read and edit."""
    path = project_dir / CONFIG_FILE
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    for key, value in (("url", store_url), ("artifact_root", artifact_root)):
        if value is not None:
            lines = _set_toml_value(lines, "store", key, value)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    written = Settings.load(project_dir, environ={})  # the file still parses, and says so
    if (store_url is not None and written.store_url != store_url) or (
        artifact_root is not None and written.artifact_root != artifact_root
    ):  # pragma: no cover - a TOML string holds any str; this guards the writer above
        raise ConfigError(f"{path}: the [store] settings did not round-trip")


def _set_toml_value(lines: list[str], section: str, key: str, value: str) -> list[str]:
    """``lines`` of a TOML file with ``key = "value"`` in ``[section]`` (replaced where the
    key is set, else added at the section's top; the section is added when missing)."""
    entry = f"{key} = {json.dumps(value)}"  # a JSON string is a TOML basic string
    header = re.compile(r"^\s*\[([^\]]+)\]\s*(#.*)?$")
    assignment = re.compile(rf"^\s*{re.escape(key)}\s*=")
    start = next(
        (
            i
            for i, line in enumerate(lines)
            if (m := header.match(line)) and m[1].strip() == section
        ),
        None,
    )
    if start is None:
        return [*lines, "", f"[{section}]", entry]
    end = next((i for i in range(start + 1, len(lines)) if header.match(lines[i])), len(lines))
    for i in range(start + 1, end):
        if assignment.match(lines[i]):
            return [*lines[:i], entry, *lines[i + 1 :]]
    return [*lines[: start + 1], entry, *lines[start + 1 :]]


def load_pipeline(path: Path) -> Pipeline:
    """Import the pipeline file; it defines ``pipeline()`` returning a Pipeline (or one)."""
    if not path.exists():
        raise ConfigError(
            f"pipeline file {path} not found", hint="set [project] pipeline in lockgate.toml"
        )
    spec = importlib.util.spec_from_file_location(f"lockgate_user_pipeline_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import the pipeline file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    candidate = getattr(module, "pipeline", None)
    if callable(candidate) and not isinstance(candidate, Pipeline):
        candidate = candidate()
    if not isinstance(candidate, Pipeline):
        raise ConfigError(
            f"{path} must define pipeline() returning a lockgate.Pipeline; found {candidate!r}"
        )
    return candidate


def apply_overrides(pipeline: Pipeline, assignments: list[str]) -> Pipeline:
    """``step.param=value`` (value as JSON, else a string) applied to a copy of the pipeline."""
    steps = dict(pipeline.steps)
    for assignment in assignments:
        target, sep, raw = assignment.partition("=")
        step_name, dot, dotted = target.partition(".")
        param, _, nested = dotted.partition(".")
        if not sep or not dot or not param:
            raise ConfigError(
                f"--set takes step.param=value or step.param.key=value; got '{assignment}'"
            )
        if step_name not in steps:
            raise ConfigError(
                f"--set {assignment}: no step '{step_name}'; steps are {sorted(steps)}"
                f"{did_you_mean(step_name, steps)}"
            )
        step = steps[step_name]
        if param not in step.params:
            raise ConfigError(
                f"--set {assignment}: step '{step_name}' has no parameter '{param}'; parameters "
                f"are {sorted(step.params)}{did_you_mean(param, step.params)}"
            )
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if nested:  # train.params.n_estimators=50 changes one key of a dict parameter
            current = step.params[param]
            if current is not None and not isinstance(current, dict):
                raise ConfigError(f"--set {assignment}: parameter '{param}' is not a dict")
            value = {**(current or {}), nested: value}
        steps[step_name] = dataclasses.replace(step, params={**step.params, param: value})
    return Pipeline(pipeline.name, steps.values(), description=pipeline.description)
