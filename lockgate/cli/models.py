"""``lockgate models``: the registry from the command line.

``list``, ``promote`` (move an alias; an unblessed version needs ``--force --reason``),
``rollback`` (the alias's previous version), ``canary`` (a traffic share or a shadow copy
for a candidate), ``history`` and ``import`` (a model trained elsewhere). A running
``lockgate serve`` follows every move within its poll interval.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

_PROJECT = click.option(
    "--project", "project_dir", type=click.Path(file_okay=False, path_type=Path), default="."
)


@contextmanager
def _registry(project_dir: Path) -> Iterator[Any]:
    from lockgate.cli.project import load_settings, open_store
    from lockgate.metadata.registry import Registry

    store = open_store(load_settings(project_dir))
    try:
        yield Registry(store)
    finally:
        store.close()


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


@click.group("models")
def models_group() -> None:
    """The model registry: versions, aliases (production, canary, ...), imports."""


@models_group.command("list")
@click.argument("name", required=False)
@_PROJECT
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def list_command(name: str | None, project_dir: Path, as_json: bool) -> None:
    """Every model and its aliases, or one model's versions."""
    with _registry(project_dir) as registry:
        if name is None:
            rows = [
                {
                    "name": model,
                    "versions": len(registry.versions(model)),
                    "aliases": registry.aliases(model),
                }
                for model in registry.models()
            ]
            if as_json:
                click.echo(json.dumps(rows, indent=1))
                return
            if not rows:
                click.echo("no models registered; run a pipeline with a push step, or import one")
                return
            click.echo(f"{'model':<24}{'versions':>9}  aliases")
            for row in rows:
                aliases = ", ".join(f"{a}={v}" for a, v in sorted(row["aliases"].items()))
                click.echo(f"{row['name']:<24}{row['versions']:>9}  {aliases or '-'}")
            return
        versions = registry.versions(name)
        data = [
            {
                "version": v.version,
                "blessed": v.blessed,
                "aliases": v.aliases,
                "created_at": v.created_at.isoformat(),
                "source": v.properties.get("source", "pipeline"),
                "framework": v.artifact.properties.get("framework"),
                "uri": v.artifact.uri,
            }
            for v in versions
        ]
        if as_json:
            click.echo(json.dumps(data, indent=1))
            return
        click.echo(f"{'version':>7}  {'blessed':<8}{'source':<10}{'framework':<11}aliases")
        for row in data:
            click.echo(
                f"{row['version']:>7}  {'yes' if row['blessed'] else 'no':<8}{row['source']:<10}"
                f"{row['framework'] or '-':<11}{', '.join(row['aliases']) or '-'}"
            )


@models_group.command("promote")
@click.argument("name")
@click.argument("version", type=int)
@_PROJECT
@click.option("--alias", default="production", show_default=True, help="The alias to move.")
@click.option("--force", is_flag=True, help="Allow an unblessed version (needs --reason).")
@click.option("--reason", default=None, help="Why; recorded in the alias history.")
def promote_command(
    name: str, version: int, project_dir: Path, alias: str, force: bool, reason: str | None
) -> None:
    """Point ALIAS (production) of model NAME at VERSION; only blessed unless --force."""
    with _registry(project_dir) as registry:
        before = registry.aliases(name).get(alias)
        registry.set_alias(name, alias, version, force=force, reason=reason)
    was = f" (was {before})" if before is not None else ""
    click.echo(f"model '{name}': {alias} -> version {version}{was}")


@models_group.command("rollback")
@click.argument("name")
@_PROJECT
@click.option("--alias", default="production", show_default=True)
@click.option("--to", "to", type=int, default=None, help="A version (default: the previous).")
@click.option("--reason", required=True, help="Why; recorded in the alias history.")
def rollback_command(name: str, project_dir: Path, alias: str, to: int | None, reason: str) -> None:
    """Move ALIAS (production) of NAME back to the version it pointed at before."""
    with _registry(project_dir) as registry:
        before = registry.aliases(name).get(alias)
        moved = registry.rollback(name, alias, reason=reason, to=to)
    click.echo(f"model '{name}': {alias} -> version {moved.version} (was {before})")


@models_group.command("canary")
@click.argument("name")
@click.argument("version", type=int, required=False)
@_PROJECT
@click.option("--percent", type=float, default=None, help="Share of requests (0-100).")
@click.option("--shadow", is_flag=True, help="Copy traffic to it; its answers are only logged.")
@click.option("--stop", is_flag=True, help="End the canary (remove the alias).")
@click.option("--force", is_flag=True, help="Allow an unblessed version (needs --reason).")
@click.option("--reason", default=None, help="Why; recorded in the alias history.")
def canary_command(
    name: str,
    version: int | None,
    project_dir: Path,
    percent: float | None,
    shadow: bool,
    stop: bool,
    force: bool,
    reason: str | None,
) -> None:
    """Serve VERSION next to production: PERCENT of requests, or a shadow copy of them."""
    from lockgate.errors import ConfigError
    from lockgate.metadata.registry import CANARY

    with _registry(project_dir) as registry:
        if stop:
            registry.remove_alias(name, CANARY, reason=reason or "canary stopped")
            click.echo(f"model '{name}': canary stopped")
            return
        if version is None:
            raise ConfigError("give the VERSION to canary, or --stop to end the canary")
        registry.start_canary(
            name, version, percent=percent, shadow=shadow, force=force, reason=reason
        )
    mode = (
        "shadow (answers logged, not returned)"
        if shadow
        else (f"{percent:g}% of requests" if percent is not None else "the server's default share")
    )
    click.echo(f"model '{name}': canary -> version {version}, {mode}")


@models_group.command("history")
@click.argument("name")
@_PROJECT
@click.option("--alias", default="production", show_default=True)
def history_command(name: str, project_dir: Path, alias: str) -> None:
    """Every move of ALIAS, newest first, with its reason."""
    with _registry(project_dir) as registry:
        history = registry.alias_history(name, alias)
    for entry in history:
        version = "-" if entry["version"] is None else str(entry["version"])
        forced = " (forced)" if entry["forced"] else ""
        click.echo(
            f"{entry['set_at']:%Y-%m-%d %H:%M:%S}  {alias} -> {version:<4}{forced}"
            f"  {entry['reason'] or ''}"
        )


@models_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="The registry name to add a version to.")
@_PROJECT
@click.option(
    "--transform",
    "transform_file",
    type=click.Path(exists=True, path_type=Path),
    help="A transform.json (or its folder) that turns raw columns into the model's input.",
)
@click.option("--features", help="Numeric input columns, in the model's order: a,b,c.")
@click.option("--label", default="label", show_default=True, help="The label's name.")
@click.option("--classes", help="Class names in the model's order (when it only has indices).")
@click.option(
    "--framework", type=click.Choice(["sklearn", "lightgbm", "xgboost", "onnx"]), default=None
)
@click.option(
    "--samples",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='Warm-up requests: {"inputs": {column: [values]}}.',
)
@click.option("--bless", is_flag=True, help="Register it as blessed (needs --reason).")
@click.option("--reason", default=None, help="Why it may skip the evaluator; recorded.")
@click.option(
    "--trust",
    "trust",
    multiple=True,
    metavar="TYPE",
    help="A type in a .skops file that you vouch for, beyond what lockgate trusts (repeat it"
    " per type; loading a type runs its code). Recorded with the version.",
)
def import_command(
    path: Path,
    name: str,
    project_dir: Path,
    transform_file: Path | None,
    features: str | None,
    label: str,
    classes: str | None,
    framework: str | None,
    samples: Path | None,
    bless: bool,
    reason: str | None,
    trust: tuple[str, ...],
) -> None:
    """Register a model trained elsewhere (.skops, LightGBM .txt, XGBoost .json/.ubj, .onnx).

    A .skops file that names types beyond scikit-learn's estimators and lockgate's own
    trainers' internals is refused with the list; --trust TYPE admits one, on your word."""
    from lockgate.cli.project import load_settings, open_store
    from lockgate.training.model_import import import_model

    settings = load_settings(project_dir)
    store = open_store(settings)
    try:
        version = import_model(
            store,
            settings.resolved_artifact_root,
            path,
            name=name,
            transform=transform_file,
            features=_split(features),
            label=label,
            classes=_split(classes),
            framework=framework,
            samples=samples,
            bless=bless,
            reason=reason,
            trust=trust,
        )
    finally:
        store.close()
    framework_name = version.artifact.properties["framework"]
    state = "blessed" if version.blessed else "not blessed"
    click.echo(
        f"Imported {path.name} ({framework_name}) as model '{name}' version {version.version},"
        f" {state}"
    )
    trusted = version.properties.get("trusted_types") or []
    if trusted:
        click.echo(f"Trusted on your word, recorded with the version: {', '.join(trusted)}")
    if version.blessed:
        click.echo(f"Promote it with: lockgate models promote {name} {version.version}")
    else:
        click.echo(
            f"Evaluate it, or promote it anyway with: lockgate models promote {name}"
            f" {version.version} --force --reason '...'"
        )


COMMANDS = [models_group]
