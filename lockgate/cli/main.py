"""The ``lockgate`` command. Errors are one line and a hint; ``--verbose`` adds the traceback.

Exit status, as ``diff`` and ``grep`` have it, so that scripts can tell a finding from a
failure: 0 all good, 1 a check found something (a gate closed, an anomaly, a drift over its
threshold, schemas that differ, a failed run), 2 the command could not do its job (bad
input, a usage error).
"""

from __future__ import annotations

import gc
import sys
import traceback

import click

from lockgate.errors import LockgateError

EXIT_ERROR = 2


class _Group(click.Group):
    """Turns errors into one line and a hint, unless --verbose asks for the traceback."""

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


def _register() -> None:
    from lockgate.cli import data, demo, lineage, models, run, runs, serve, show

    for module in (demo, run, runs, lineage, show, serve, models, data):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    try:
        cli(prog_name="lockgate")
    finally:
        # An Arrow reader left in a reference cycle (an error's traceback) would otherwise
        # be destroyed during interpreter shutdown, after Arrow's thread pools: the process
        # then aborts ("terminate called without an active exception", exit 134).
        gc.collect()


if __name__ == "__main__":
    main()
