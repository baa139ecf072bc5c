"""``lockgate show ID``: one artifact from the store, rendered as the standalone commands
render the same thing (statistics as a table or HTML, anomalies as a list, an evaluation as
its report)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


@click.command("show")
@click.argument("artifact_id", type=int)
@click.option(
    "--project", "project_dir", type=click.Path(file_okay=False, path_type=Path), default="."
)
@click.option(
    "--split", default="all", show_default=True, help="Which split of a Statistics artifact."
)
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write statistics (train and eval side by side) or an evaluation's report as HTML.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the artifact's record and content as JSON."
)
@click.option(
    "--metrics",
    default=None,
    metavar="NAME,...",
    help="Which metrics a ModelEvaluation's table shows (default: the thresholds' and the task's main ones).",
)
def show_command(
    project_dir: Path,
    artifact_id: int,
    split: str,
    html_file: Path | None,
    as_json: bool,
    metrics: str | None,
) -> None:
    """Show artifact ARTIFACT_ID: its type, where it is, what it holds."""
    from lockgate.cli.data import _print_anomalies
    from lockgate.cli.project import load_settings, open_store
    from lockgate.errors import NotFoundError

    store = open_store(load_settings(project_dir))
    try:
        artifact = store.get_artifact(artifact_id)
        producer = store.producer(artifact_id)
    finally:
        store.close()
    folder = artifact.path
    record = {
        "id": artifact.id,
        "type": artifact.type_name,
        "uri": artifact.uri,
        "fingerprint": artifact.fingerprint,
        "step": producer.step_name if producer else None,
        "run_id": producer.run_id if producer else None,
        "properties": artifact.properties,
    }
    if artifact.type_name == "Statistics":
        path = folder / f"{split}.json"
        if not path.exists():
            splits = sorted(p.stem for p in folder.glob("*.json"))
            raise NotFoundError(
                f"statistics artifact {artifact_id} has no split '{split}'; splits are {splits}"
            )
        stats = json.loads(path.read_text())
        if html_file is not None:
            from lockgate.data.report import render_html

            train, evaluation = (
                json.loads((folder / f"{s}.json").read_text()) for s in ("train", "eval")
            )
            html = render_html(
                evaluation,
                title=f"Statistics #{artifact_id}",
                label="eval",
                compare=train,
                compare_label="train",
            )
            html_file.write_text(html, encoding="utf-8")
            click.echo(f"wrote {html_file}", err=True)
        if as_json:
            click.echo(json.dumps({**record, "statistics": stats}, indent=1, default=str))
        elif html_file is None:
            from lockgate.data.report import render_terminal

            click.echo(
                f"Statistics #{artifact_id} ({split}) from step '{record['step']}' of run {record['run_id']}"
            )
            click.echo(render_terminal(stats))
        return
    if artifact.type_name == "Anomalies" and not as_json:
        listed = folder / "anomalies.json"
        if listed.exists():
            found = json.loads(listed.read_text())
        else:  # a skew check: its anomalies are in the properties, its distances in skew.json
            found = {}
            for item in artifact.properties.get("anomalies", []):
                found.setdefault(item.get("split", "all"), []).append(item)
        if not found:
            _print_anomalies([])
        for split_name, items in found.items():
            click.echo(f"[{split_name}]")
            _print_anomalies(items)
        return
    if artifact.type_name == "ModelEvaluation" and not as_json:
        blessing = None
        if producer is not None:  # format 1 keeps the verdict in the Blessing beside it
            blessing = _blessing_of(project_dir, producer.id)
        _show_evaluation(folder, artifact_id, record, html_file, metrics, blessing)
        return
    if artifact.type_name == "HyperParameters" and not as_json:
        from lockgate.cli.tuning import render_trials

        click.echo(
            f"HyperParameters #{artifact_id} from step '{record['step']}' of run {record['run_id']}"
        )
        click.echo("\n".join(render_trials(folder)))
        return
    click.echo(json.dumps(record, indent=1, default=str))


def _show_evaluation(
    folder: Path,
    artifact_id: int,
    record: dict[str, Any],
    html_file: Path | None,
    metrics: str | None,
    blessing: dict[str, Any] | None,
) -> None:
    """The report of a ModelEvaluation: tables in the terminal, or the HTML page (the one the
    evaluate step wrote, else drawn now from ``evaluation.json``)."""
    import shutil

    from lockgate.errors import DataError, NotFoundError

    path = folder / "evaluation.json"
    if not path.exists():
        raise NotFoundError(f"evaluation artifact {artifact_id} has no evaluation.json in {folder}")
    try:
        evaluation = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON: {exc}") from exc
    if isinstance(evaluation, dict) and "format_version" not in evaluation and blessing:
        evaluation["blessing"] = blessing
    if html_file is not None:
        written = folder / "report.html"
        if written.exists():
            shutil.copyfile(written, html_file)
        else:
            from lockgate.evaluation.report import render_html

            html_file.write_text(render_html(evaluation), encoding="utf-8")
        click.echo(f"wrote {html_file}", err=True)
        return
    from rich.console import Console

    from lockgate.evaluation.report import render_terminal

    chosen = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    click.echo(
        f"ModelEvaluation #{artifact_id} from step '{record['step']}' of run {record['run_id']}"
    )
    render_terminal(evaluation, Console(highlight=False), metrics=chosen)


def _blessing_of(project_dir: Path, execution_id: int) -> dict[str, Any] | None:
    """blessing.json of the Blessing that the same evaluate execution wrote, if any."""
    from lockgate.cli.project import load_settings, open_store

    store = open_store(load_settings(project_dir))
    try:
        outputs = store.execution_artifacts(execution_id, "output")
    finally:
        store.close()
    for artifact in outputs.values():
        path = artifact.path / "blessing.json"
        if artifact.type_name == "Blessing" and path.exists():
            try:
                found = json.loads(path.read_text())
            except json.JSONDecodeError:
                return None
            return found if isinstance(found, dict) else None
    return None


COMMANDS = [show_command]
