"""``lockgate models``: the registry from the command line.

``list``, ``promote`` (move an alias; an unblessed version needs ``--force --reason``),
``rollback`` (the alias's previous version), ``canary`` (a traffic share or a shadow copy
for a candidate), ``history`` and ``import`` (a model trained elsewhere). A running
``lockgate serve`` follows every move within its poll interval.

Every move first loads the version as the server would (``serving/promotion.py``): files
that changed after the push, or a model that does not load or answer its warm-up
requests, refuse the move, forced or not, since a server that restarts on such a version
has nothing to serve. ``list`` shows where a running server serves something else than
the registry says, and why.
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
def _registry(project_dir: Path, *, verify: bool = False) -> Iterator[Any]:
    """The project's registry; ``verify``: each alias move loads the version first."""
    from lockgate.cli.project import load_settings, open_store
    from lockgate.metadata.registry import Registry

    store = open_store(load_settings(project_dir))
    try:
        if verify:
            from lockgate.serving.promotion import verified_registry

            yield verified_registry(store)
        else:
            yield Registry(store)
    finally:
        store.close()


@contextmanager
def _stays(alias: str, before: int | None) -> Iterator[None]:
    """A refused move says where the alias stays."""
    from lockgate.errors import ModelError, ModelIntegrityError

    try:
        yield
    except ModelError as exc:
        kind = ModelIntegrityError if isinstance(exc, ModelIntegrityError) else ModelError
        where = f"stays on version {before}" if before is not None else "is not set"
        raise kind(f"{exc}; alias '{alias}' {where}", path=exc.path, hint=exc.hint) from exc


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
    """Every model and its aliases, or one model's versions; with where a running server
    serves something else than the registry says, and why."""
    from lockgate.metadata import serving_status

    with _registry(project_dir) as registry:
        if name is None:
            every = serving_status.reports(registry.store)
            models = registry.models()
            reports = {m: [r for r in every if r.row.model_name == m] for m in models}
            rows = []
            for model in models:
                aliases = registry.aliases(model)
                rows.append(
                    {
                        "name": model,
                        "versions": len(registry.versions(model)),
                        "aliases": aliases,
                        "servers": [_server_json(r, aliases) for r in reports[model]],
                    }
                )
            if as_json:
                click.echo(json.dumps(rows, indent=1))
                return
            if not rows:
                click.echo("no models registered; run a pipeline with a push step, or import one")
                return
            click.echo(f"{'model':<24}{'versions':>9}  aliases")
            for row in rows:
                aliases = ", ".join(_alias_text(row["aliases"], reports[row["name"]]))
                click.echo(f"{row['name']:<24}{row['versions']:>9}  {aliases or '-'}")
            return
        versions = registry.versions(name)
        aliases = registry.aliases(name)
        servers = serving_status.reports(registry.store, name)
        data = [
            {
                "version": v.version,
                "blessed": v.blessed,
                "aliases": v.aliases,
                "created_at": v.created_at.isoformat(),
                "source": v.properties.get("source", "pipeline"),
                "framework": v.artifact.properties.get("framework"),
                "framework_version": v.artifact.properties.get("framework_version"),
                "framework_description": v.artifact.properties.get("framework_description"),
                "uri": v.artifact.uri,
                "served_by": [
                    f"{r.server} ({r.row.role})"
                    for r in servers
                    if not r.stale and r.row.served_version == v.version
                ],
            }
            for v in versions
        ]
        if as_json:
            click.echo(json.dumps(data, indent=1))
            return
        click.echo(
            f"{'version':>7}  {'blessed':<8}{'source':<10}{'framework':<11}{'aliases':<24}"
            "description"
        )
        for row in data:
            click.echo(
                f"{row['version']:>7}  {'yes' if row['blessed'] else 'no':<8}{row['source']:<10}"
                f"{row['framework'] or '-':<11}{', '.join(row['aliases']) or '-':<24}"
                f"{_description(row)}"
            )
        for report in servers:
            click.echo(_server_text(report, _registry_version(report, aliases)))


def _description(row: dict[str, Any]) -> str:
    """The framework's description, with the library version the model was trained with."""
    text = row["framework_description"] or "-"
    if row["framework_version"]:
        return f"{text} ({row['framework']} {row['framework_version']})"
    return text


def _registry_version(report: Any, aliases: dict[str, int]) -> int | None:
    """The version the registry names for what a server row follows."""
    alias = report.row.alias
    if alias.isdigit():
        return int(alias)
    if alias in aliases:
        return aliases[alias]
    return report.row.wanted_version if alias == "latest" else None


def _alias_text(aliases: dict[str, int], reports: list[Any]) -> list[str]:
    """``production=3 (server host:8080 serves 2: version 3 failed to load: ...)``; an
    alias a server still serves but the registry no longer has shows as ``alias=-``."""
    names = sorted(
        set(aliases)
        | {r.row.alias for r in reports if not r.stale and r.row.served_version is not None}
    )
    texts = []
    for alias in names:
        version = aliases.get(alias)
        mine = [r for r in reports if r.row.alias == alias]
        notes = [note for r in mine if (note := _note(r, version))]
        shown = "-" if version is None else str(version)
        texts.append(f"{alias}={shown}" + (f" ({'; '.join(notes)})" if notes else ""))
    return texts


def _note(report: Any, version: int | None) -> str | None:
    """What a server row adds to an alias: nothing while it serves the registry's version."""
    row = report.row
    if row.served_version == version:
        return None
    if report.stale:
        return f"server {report.server} stale, last seen {report.updated_at:%Y-%m-%d %H:%M} UTC"
    serves = row.served_version if row.served_version is not None else "nothing"
    text = f"server {report.server} serves {serves}"
    return text + (f": {_why(row)}" if row.failed_version is not None else "")


def _why(row: Any) -> str:
    """``version 3 failed to load (integrity): model file ... has sha256 ...``"""
    said = f"model '{row.model_name}' version {row.failed_version} does not load: "
    error = (row.last_error or "").removeprefix(said)
    return f"version {row.failed_version} failed to load ({row.failure_reason}): {error}"


def _server_text(report: Any, version: int | None) -> str:
    row = report.row
    stale = f", stale since {report.updated_at:%Y-%m-%d %H:%M} UTC" if report.stale else ""
    registry = "-" if version is None else version
    served = "nothing" if row.served_version is None else f"version {row.served_version}"
    text = (
        f"server {report.server} (pid {report.server.pid}{stale}): {row.alias} is {registry}"
        f" in the registry, serves {served}"
    )
    return text + (f"; {_why(row)}" if row.failed_version is not None else "")


def _server_json(report: Any, aliases: dict[str, int]) -> dict[str, Any]:
    row = report.row
    version = _registry_version(report, aliases)
    return {
        "server": str(report.server),
        "host": report.server.host,
        "port": report.server.port,
        "pid": report.server.pid,
        "role": row.role,
        "alias": row.alias,
        "registry_version": version,
        "served_version": row.served_version,
        "failed_version": row.failed_version,
        "failure_reason": row.failure_reason,
        "last_error": row.last_error,
        "updated_at": report.updated_at.isoformat(),
        "stale": report.stale,
        "agrees": row.served_version == version,
    }


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
    with _registry(project_dir, verify=True) as registry:
        before = registry.aliases(name).get(alias)
        with _stays(alias, before):
            registry.set_alias(name, alias, version, force=force, reason=reason, expected=before)
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
    with _registry(project_dir, verify=True) as registry:
        before = registry.aliases(name).get(alias)
        with _stays(alias, before):
            moved = registry.rollback(name, alias, reason=reason, to=to, expected=before)
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

    with _registry(project_dir, verify=True) as registry:
        if stop:
            registry.remove_alias(name, CANARY, reason=reason or "canary stopped")
            click.echo(f"model '{name}': canary stopped")
            return
        if version is None:
            raise ConfigError("give the VERSION to canary, or --stop to end the canary")
        before = registry.aliases(name).get(CANARY)
        with _stays(CANARY, before):
            registry.start_canary(
                name,
                version,
                percent=percent,
                shadow=shadow,
                force=force,
                reason=reason,
                expected=before,
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
    "--framework",
    default=None,
    help="The model's framework, when its suffix does not tell (sklearn, lightgbm, xgboost,"
    " onnx, pytorch, or one registered through the lockgate.frameworks entry point group).",
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
    help="A type in a .skops file (or the function that builds a .safetensors model's module)"
    " that you vouch for, beyond what lockgate trusts (repeat it per type; loading a type runs"
    " its code). Recorded with the version.",
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
