"""The ``lockgate`` command. Errors are one line and a hint; ``--verbose`` adds the traceback.

Exit status, as ``diff`` and ``grep`` have it, so that scripts can tell a finding from a
failure: 0 all good, 1 a check found something (a gate closed, an anomaly, a drift over its
threshold, schemas that differ, a failed run), 2 the command could not do its job (bad
input, a usage error).
"""

from __future__ import annotations

import gc
import sys
from importlib import import_module

import click

from lockgate.errors import LockgateError

EXIT_ERROR = 2

#: every command, by name, and where it is defined: a module loads when its command runs (or
#: ``--help`` lists it), so that ``lockgate run`` does not import the serving or data commands
COMMANDS = {
    "demo": "lockgate.cli.demo:demo_command",
    "drift": "lockgate.cli.data:drift_command",
    "init": "lockgate.cli.demo:init_command",
    "lineage": "lockgate.cli.lineage:lineage_command",
    "models": "lockgate.cli.models:models_group",
    "run": "lockgate.cli.run:run_command",
    "runs": "lockgate.cli.runs:runs_command",
    "schema": "lockgate.cli.data:schema_group",
    "serve": "lockgate.cli.serve:serve_command",
    "show": "lockgate.cli.show:show_command",
    "skew": "lockgate.cli.data:skew_command",
    "stats": "lockgate.cli.data:stats_command",
    "validate": "lockgate.cli.data:validate_command",
}


class _Group(click.Group):
    """Loads each command on first use (``COMMANDS``); turns errors into one line and a
    hint, unless --verbose asks for the traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, _, name = COMMANDS[cmd_name].partition(":")
            self.add_command(getattr(import_module(module), name), cmd_name)
        return self.commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:  # the reader of our output went away (| head): not an error
            sys.stderr.close()
            ctx.exit(0)
        except Exception as exc:  # every error a user meets ends here
            if ctx.obj and ctx.obj.get("verbose"):
                import traceback

                traceback.print_exc()
            if isinstance(exc, LockgateError):
                click.secho(f"error: {exc}", fg="red", err=True)
                if exc.hint:
                    click.echo(f"hint: {exc.hint}", err=True)
            else:
                click.secho(f"error: unexpected {type(exc).__name__}: {exc}", fg="red", err=True)
                click.echo("hint: run again with --verbose for the traceback", err=True)
        # Exit outside the except block, so that the exit does not carry the error along:
        # its traceback holds the frames of what failed, Arrow readers among them, and
        # those must go (below) while Arrow can still stop their threads.
        gc.collect()
        ctx.exit(EXIT_ERROR)


@click.group(cls=_Group)
@click.option("--verbose", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="lockgate")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """lockgate: from raw data to a model in production, with a gate between every stage."""
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose


def main() -> None:
    try:
        cli(prog_name="lockgate")
    finally:
        # An Arrow reader left in a reference cycle (an error's traceback) would otherwise
        # be destroyed during interpreter shutdown, after Arrow's thread pools: the process
        # then aborts ("terminate called without an active exception", exit 134). A command
        # that loaded no Arrow (a cached run, --help) skips the collection's tens of ms.
        if "pyarrow" in sys.modules or "polars" in sys.modules:
            gc.collect()


if __name__ == "__main__":
    main()
