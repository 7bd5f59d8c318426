"""The ``dorkstore`` command.

Every error, bad arguments included, is one line on stderr and a non-zero exit
status, never a traceback. Findings (drift, failed checks) go to stdout with
exit status 1.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import peewee as pw

from dorkstore import admin
from dorkstore.backends.sqlite import MEMORY
from dorkstore.db import close_db, default_path, init_db, migrate_db
from dorkstore.errors import DatabaseError, DorkstoreError
from dorkstore.legacy import count_legacy_rows, import_legacy
from dorkstore.maildir import message_files
from dorkstore.migrate import check_migrations as find_missing_migration
from dorkstore.repositories.messages import RelayIndex

__all__ = ["cli", "main"]


class _Target:
    """The --db option, opened on demand."""

    def __init__(self, target: str | None) -> None:
        self.target = target

    @property
    def path(self) -> Path | None:
        """The database file, or None for ":memory:"."""
        if self.target == MEMORY:
            return None
        return default_path() if self.target is None else Path(self.target)

    def open(self, *, migrate: bool) -> pw.Database:
        """Open (and with `migrate`, create or migrate) the database."""
        return init_db(self.target, migrate=migrate)

    def open_existing(self) -> pw.Database:
        """Open a database that must already exist, migrating nothing."""
        if self.path is not None and not self.path.exists():
            raise DatabaseError(f"no database at {self.path}")
        return self.open(migrate=False)


class _OneLineErrors(click.Group):
    """A group whose errors, bad arguments included, are one line on stderr."""

    def main(  # type: ignore[override]
        self,
        args: list[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> int:
        """Run the command; return its exit status, or exit with it when standalone."""
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            _error(exc.format_message())
            status = exc.exit_code
        except click.exceptions.Abort:
            _error("aborted")
            status = 1
        except Exception as exc:  # the promise: one line, never a traceback
            _error(_describe(exc))
            status = 1
        else:
            # click returns the status of ctx.exit() / Exit, or the command's return value.
            status = result if isinstance(result, int) else 0
        if standalone_mode:
            sys.exit(status)
        return status


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "target",
    metavar="TARGET",
    help="Database file, or :memory:. Default: $DORK_HOME/dork.db (~/.dork/dork.db).",
)
@click.version_option(package_name="dorkstore")
@click.pass_context
def cli(ctx: click.Context, target: str | None) -> None:
    """Manage the dorkstore database: one SQLite file for scheduler, relay and mesh."""
    ctx.obj = _Target(target)
    ctx.call_on_close(close_db)


@cli.command()
@click.pass_obj
def migrate(target: _Target) -> None:
    """Create or migrate the database and list the migrations applied."""
    applied = migrate_db(target.target)
    for name in applied:
        click.echo(f"applied {name}")
    if not applied:
        click.echo("nothing to migrate")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, for scripts.")
@click.pass_obj
def status(target: _Target, as_json: bool) -> None:
    """Show the file, its size, SQLite and journal mode, migrations and row counts."""
    target.open_existing()
    info = admin.status()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"database: {info['path']}")
    click.echo(f"size: {info['size_bytes']} bytes (with -wal)")
    click.echo(f"sqlite: {info['sqlite_version']}")
    click.echo(f"journal mode: {info['journal_mode']}")
    for key in ("applied_migrations", "pending_migrations", "unknown_migrations"):
        label = key.replace("_", " ")
        click.echo(f"{label}: {', '.join(info[key]) or 'none'}")
    for table, count in info["tables"].items():
        click.echo(f"{table} {count}")


@cli.command("check-migrations")
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Migrations to check. Default: the ones dorkstore applies.",
)
def check_migrations(directory: Path | None) -> None:
    """Exit 1 and print the missing migration if the models changed without one."""
    missing = find_missing_migration(directory)
    if missing is None:
        click.echo("migrations match the models")
        return
    click.echo("the models changed without a migration; it needs:\n")
    click.echo(missing, nl=False)
    raise click.exceptions.Exit(1)


@cli.command("rebuild-index")
@click.argument("maildir", type=click.Path(path_type=Path))
@click.pass_obj
def rebuild_index(target: _Target, maildir: Path) -> None:
    """Replace the relay index with what the Maildir tree MAILDIR holds."""
    target.open(migrate=True)
    skipped: Counter[str] = Counter()
    with _progress(maildir) as advance:

        def report(_path: Path, reason: str | None) -> None:
            if reason is not None:
                skipped[reason.split(":", 1)[0]] += 1
            advance()

        indexed = RelayIndex().rebuild(maildir, report=report)
    why = ", ".join(f"{count} {kind}" for kind, count in sorted(skipped.items()))
    click.echo(
        f"indexed {indexed} messages; skipped {sum(skipped.values())} files"
        + (f" ({why})" if why else "")
    )


@cli.command("import-legacy")
@click.option(
    "--from",
    "source",
    type=click.Path(path_type=Path),
    help="Directory holding the old databases. Default: $DORK_HOME.",
)
@click.pass_obj
def import_legacy_command(target: _Target, source: Path | None) -> None:
    """Copy the old pulse, relay and mesh databases and schedules.json in, once.

    Rows are copied in short transactions, so a running server keeps writing;
    running it again adds nothing, and completes an import that was interrupted.
    """
    target.open(migrate=True)
    with _bar(lambda: count_legacy_rows(source), "importing") as advance:
        report = import_legacy(source, progress=advance)
    for line in report.lines():
        click.echo(line)


def _non_empty_path(_ctx: click.Context, _param: click.Parameter, value: str) -> Path:
    """Refuse an empty path, which Path("") would quietly turn into the current directory."""
    if not value:
        raise click.BadParameter("the path is empty; give a file, or a directory such as '.'")
    return Path(value)


@cli.command()
@click.argument("dest", type=click.Path(), callback=_non_empty_path)
@click.pass_obj
def backup(target: _Target, dest: Path) -> None:
    """Copy the database to DEST (a new file, or a directory to put a dated copy in).

    The copy is consistent even while other processes keep writing.
    """
    target.open_existing()
    click.echo(f"backed up to {admin.backup(dest)}")


@cli.command()
@click.pass_obj
def doctor(target: _Target) -> None:
    """Check integrity, foreign keys and migration state; exit 1 naming any problem."""
    target.open_existing()
    findings = admin.doctor()
    for name, trouble in findings:
        click.echo(f"{name}: " + ("; ".join(trouble) if trouble else "ok"))
    if any(trouble for _, trouble in findings):
        raise click.exceptions.Exit(1)


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    return cli.main(argv, prog_name="dorkstore", standalone_mode=False)


def _describe(exc: Exception) -> str:
    if isinstance(exc, DorkstoreError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    if isinstance(exc, OSError | pw.PeeweeException):
        return f"{type(exc).__name__}: {exc}"
    return f"unexpected {type(exc).__name__}: {exc} (please report this)"


@contextmanager
def _progress(maildir: Path) -> Iterator[Any]:
    """Yield a function to call per file: a progress bar on a terminal, nothing otherwise."""
    if not maildir.is_dir():
        yield lambda: None
        return
    with _bar(lambda: sum(1 for _ in message_files(maildir)), "indexing") as advance:
        yield lambda: advance(1)


@contextmanager
def _bar(total: Callable[[], int], label: str) -> Iterator[Callable[[int], None]]:
    """Yield a function advancing a progress bar by n steps: on a terminal only."""
    if not sys.stdout.isatty():
        yield lambda _steps: None
        return
    with click.progressbar(length=total(), label=label) as bar:
        yield bar.update


def _error(message: str) -> None:
    line = " ".join(message.split()) or "unknown error"
    click.echo(f"dorkstore: error: {line}", err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
