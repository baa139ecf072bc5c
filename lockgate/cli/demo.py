"""``lockgate init`` and ``lockgate demo``: a new project from the built-in template, or,
with ``init NAME --data PATH --label COLUMN``, a project made for the user's own data."""

from __future__ import annotations

from pathlib import Path

import click

from lockgate.cli.inputs import InputOptions, input_options
from lockgate.errors import ConfigError
from lockgate.settings import CONFIG_FILE

TEMPLATES = ("penguins", "diabetes")
#: what each template shows off, and a parameter change worth trying on it
ABOUT = {
    "penguins": ("classification with LightGBM", "train.params.n_estimators=50"),
    "diabetes": ("regression with a tuned XGBoost", "tune.n_trials=30"),
}


def create_project(target: Path, template: str = "penguins") -> Path:
    """Copy a template into ``target``, which must not exist or be empty."""
    import shutil
    from importlib import resources

    if template not in TEMPLATES:
        raise ConfigError(f"unknown template '{template}'; templates are {list(TEMPLATES)}")
    _check_empty(target)
    source = resources.files("lockgate") / "templates" / template
    with resources.as_file(source) as folder:
        shutil.copytree(
            folder, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    return target


def _check_empty(target: Path) -> None:
    if target.exists() and any(target.iterdir()):
        raise ConfigError(
            f"{target} already exists and is not empty",
            hint="choose another folder, or run the project in it with: lockgate run",
        )


@click.command("init")
@click.argument("name", type=click.Path(file_okay=False, path_type=Path))
@click.option("--template", default="penguins", show_default=True, type=click.Choice(TEMPLATES))
@click.option(
    "--data",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Your data (a CSV, JSON-lines or Parquet file or folder): the project is made for it.",
)
@click.option("--label", default=None, help="With --data: the column the model predicts.")
@click.option(
    "--store",
    "store_url",
    default=None,
    metavar="URL",
    help="The metadata store, for a team a PostgreSQL URL (postgresql+psycopg://user@host/db)"
    "  [default: a SQLite file in the project]",
)
@click.option(
    "--artifacts",
    "artifact_root",
    default=None,
    metavar="URL",
    help="Where artifact files live, a folder or URL every machine reaches"
    "  [default: .lockgate/artifacts in the project]",
)
@input_options
def init_command(
    name: Path,
    template: str,
    data: Path | None,
    label: str | None,
    store_url: str | None,
    artifact_root: str | None,
    read: InputOptions,
) -> None:
    """Create a new project folder NAME: for your data with --data PATH --label COLUMN
    (pipeline, settings and model named NAME), else from a template. --store and
    --artifacts point it at a team's shared metadata store and artifact storage."""
    has_password = False
    if store_url is not None:
        from lockgate.metadata.database import check_store_url

        has_password = check_store_url(store_url).password is not None  # before any write
    if data is None:
        if label is not None or read != InputOptions():
            raise click.UsageError("--label and the input options go with --data PATH")
        create_project(name, template)
        click.echo(f"Created {name}/ from the '{template}' template.")
    else:
        if label is None:
            raise click.UsageError("--data needs --label COLUMN: the column the model predicts")
        from lockgate.cli.project_from_data import create_project_from_data

        made = create_project_from_data(name, data, label, read)
        for line in made.describe():
            click.echo(line)
    if store_url is not None or artifact_root is not None:
        from lockgate.cli.project import write_store_settings

        write_store_settings(name, store_url=store_url, artifact_root=artifact_root)
        click.echo(f"{name}/lockgate.toml: [store] set for a shared store.")
        if has_password:
            click.echo(
                f"Note: {name}/lockgate.toml now holds the database password; keep it out of"
                " version control, or set LOCKGATE_STORE_URL (or ~/.pgpass) instead."
            )
    click.echo(f"Next: cd {name} && lockgate run")


@click.command("demo")
@click.option(
    "--dir",
    "target",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Project folder  [default: lockgate-demo, or lockgate-demo-TEMPLATE]",
)
@click.option("--template", default="penguins", show_default=True, type=click.Choice(TEMPLATES))
@click.option(
    "--runner",
    type=click.Choice(["local", "ray"]),
    default=None,
    help="Where steps run: local threads (default) or a local Ray.",
)
def demo_command(target: Path | None, template: str, runner: str | None) -> None:
    """Create a project from a template (penguins: classification; diabetes: regression
    with a tuned XGBoost) and run it end to end."""
    from lockgate.cli.run import run_project

    if target is None:
        target = Path("lockgate-demo" if template == "penguins" else f"lockgate-demo-{template}")
    what, change = ABOUT[template]
    if (target / CONFIG_FILE).exists():
        click.echo(f"{target}/ exists already: running it again.")
    else:
        create_project(target, template)
        click.echo(f"Created {target}/ from the '{template}' template ({what}).")
    result = run_project(target, runner=runner)
    click.echo("")
    click.echo("Next, try:")
    click.echo(f"  cd {target}")
    click.echo(
        "  lockgate serve                   # the model on http://127.0.0.1:8080 (V2 protocol)"
    )
    click.echo(f"  lockgate lineage {template:<15} # why is this model in production?")
    click.echo("  lockgate runs                    # every run, its status and duration")
    click.echo("  lockgate schema update           # what new data would change in schema.yaml")
    click.echo(f"  lockgate run --set {change}   # re-runs that step and what follows")
    if template == "penguins":
        click.echo(
            "  lockgate run --set train.trainer=logistic_regression --set 'train.params={\"C\": 0.001}'"
            "   # a worse model: the gate names the failing slices, production keeps its version"
        )
    if not result.ok:
        raise click.exceptions.Exit(1)


COMMANDS = [init_command, demo_command]
