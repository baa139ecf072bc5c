"""``lockgate lineage MODEL[:VERSION]``: the chain from a model back to its input file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lockgate.errors import LockgateError

if TYPE_CHECKING:
    from lockgate.core.artifacts import Artifact
    from lockgate.metadata.lineage import LineageNode


def render_lineage(
    node: LineageNode, prefix: str = "", name: str | None = None, last: bool = True
) -> list[str]:
    """The lineage tree as text lines, one artifact per line."""
    artifact = node.artifact
    label = f"{name}: " if name else ""
    line = f"{label}{artifact.type_name} #{artifact.id}"
    if node.producer is not None:
        line += f"  <- step '{node.producer.step_name}' (run {node.producer.run_id})"
    facts = _facts(artifact.type_name, artifact.properties)
    if facts:
        line += f"  {facts}"
    if artifact.fingerprint:
        line += f"  sha256:{artifact.fingerprint[:12]}"
    if node.seen_before:
        line += "  (its own lineage)" if name == "baseline" else "  (shown above)"
    connector = "" if name is None else ("└─ " if last else "├─ ")
    lines = [prefix + connector + line]
    child_prefix = prefix + ("" if name is None else ("   " if last else "│  "))
    children = list(node.inputs.items())
    for index, (child_name, child) in enumerate(children):
        lines += render_lineage(child, child_prefix, child_name, index == len(children) - 1)
    if artifact.type_name == "HyperParameters" and not node.seen_before:
        lines += [f"{child_prefix}   {line}" for line in _trials(artifact)]
    if (
        artifact.type_name == "Examples"
        and "source" in artifact.properties
        and not node.seen_before
    ):
        lines.append(
            f"{child_prefix}└─ input file: {artifact.properties['source']}  "
            f"sha256:{artifact.properties.get('source_fingerprint')}"
        )
    return lines


def _trials(artifact: Artifact) -> list[str]:
    """The tune step's trials under its HyperParameters node."""
    from lockgate.cli.tuning import trial_table

    try:
        path = artifact.path / "hyperparameters.json"
        return trial_table(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, LockgateError) as exc:
        return [f"(trials not readable: {exc})"]


def _facts(type_name: str, properties: dict[str, Any]) -> str:
    if type_name == "Examples":
        return f"splits {properties.get('splits')}"
    if type_name == "Model":
        facts = f"{properties.get('trainer')} {json.dumps(properties.get('params', {}))}"
        if properties.get("best_iteration"):
            facts += f" stopped early at round {properties['best_iteration']}"
        return facts
    if type_name == "ModelEvaluation":
        metrics = properties.get("metrics") or {}
        return " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
    if type_name == "Blessing":
        return f"blessed={properties.get('blessed')}"
    if type_name == "TransformGraph":
        return f"label={properties.get('label')} features={len(properties.get('features', []))}"
    if type_name == "HyperParameters":
        return (
            f"{properties.get('metric')}={properties.get('best_value')} best of"
            f" {properties.get('trials')} trials ({properties.get('pruned')} pruned)"
            f" {json.dumps(properties.get('params', {}))} study {properties.get('study_name')}"
        )
    if type_name == "PushedModel":
        return f"model_sha256:{str(properties.get('model_sha256'))[:12]}"
    return ""


@click.command("lineage")
@click.argument("model")
@click.option(
    "--project", "project_dir", type=click.Path(file_okay=False, path_type=Path), default="."
)
@click.option("--json", "as_json", is_flag=True, help="Print the lineage graph as JSON.")
def lineage_command(model: str, project_dir: Path, as_json: bool) -> None:
    """Where MODEL (NAME, NAME:VERSION or NAME@ALIAS; production by default) came from."""
    from lockgate.cli.project import load_settings, open_store
    from lockgate.metadata.lineage import artifact_lineage
    from lockgate.metadata.registry import Registry

    name, ref = _parse_model_ref(model)
    store = open_store(load_settings(project_dir))
    try:
        version = Registry(store).get(name, ref)
        tree = artifact_lineage(store, version.artifact)
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "model": name,
                        "version": version.version,
                        "aliases": version.aliases,
                        "lineage": tree.to_dict(),
                    },
                    indent=1,
                    default=str,
                )
            )
            return
        aliases = f" ({', '.join(version.aliases)})" if version.aliases else ""
        click.echo(
            f"Model '{name}' version {version.version}{aliases}, registered {version.created_at:%Y-%m-%d %H:%M:%S}"
        )
        for line in render_lineage(tree):
            click.echo(line)
    finally:
        store.close()


def _parse_model_ref(text: str) -> tuple[str, str | None]:
    for separator in ("@", ":"):
        if separator in text:
            name, ref = text.split(separator, 1)
            return name, ref
    return text, None


COMMANDS = [lineage_command]
