"""The ``dorkstore`` command.

Every error, bad arguments included, is one line on stderr and a non-zero exit
status; findings (drift, failed checks) go to stdout with exit status 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dorkstore import db as _db
from dorkstore import migrate as _migrate
from dorkstore.errors import DorkstoreError

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "target",
    metavar="TARGET",
    help="Database file, or :memory:. Default: $DORK_HOME/dork.db (~/.dork/dork.db).",
)
@click.pass_context
def cli(ctx: click.Context, target: str | None) -> None:
    """Manage the dorkstore database."""
    ctx.obj = target


@cli.command()
@click.pass_obj
def migrate(target: str | None) -> None:
    """Apply pending migrations and list what was applied."""
    applied = _db.migrate_db(target)
    _db.close_db()
    for name in applied:
        click.echo(f"applied {name}")
    if not applied:
        click.echo("nothing to migrate")


@cli.command("check-migrations")
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Migrations to check. Default: the ones dorkstore applies.",
)
def check_migrations(directory: Path | None) -> None:
    """Exit 1 and print the missing migration if the models changed without one."""
    missing = _migrate.check_migrations(directory)
    if missing is None:
        click.echo("migrations match the models")
        return
    click.echo("the models changed without a migration; it needs:\n")
    click.echo(missing, nl=False)
    raise click.exceptions.Exit(1)


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    try:
        # standalone_mode=False lets this function print errors as one line.
        status = cli.main(args=argv, prog_name="dorkstore", standalone_mode=False)
    except click.ClickException as exc:
        _error(exc.format_message())
        return exc.exit_code
    except click.exceptions.Abort:
        _error("aborted")
        return 1
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except DorkstoreError as exc:
        _error(str(exc))
        return 1
    except OSError as exc:
        _error(f"{exc.filename or ''}: {exc.strerror}" if exc.strerror else str(exc))
        return 1
    # click returns the status of ctx.exit() / Exit, or the command's return value.
    return status if isinstance(status, int) else 0


def _error(message: str) -> None:
    line = " ".join(message.split()) or "unknown error"
    click.echo(f"dorkstore: error: {line}", err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
