"""The ``dorkstore`` command.

Every error, bad arguments included, is one line on stderr and a non-zero exit
status, never a traceback. Findings (drift, failed checks) go to stdout with
exit status 1.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import click
import peewee as pw

from dorkstore import admin
from dorkstore.backends.postgres import is_url
from dorkstore.backends.sqlite import MEMORY
from dorkstore.copy import copy_database
from dorkstore.db import DATABASE_URL_VARIABLE, close_db, default_path, init_db, migrate_db
from dorkstore.errors import DatabaseError, DorkstoreError
from dorkstore.legacy import count_legacy_rows, import_legacy
from dorkstore.maildir import message_files
from dorkstore.migrate import check_migrations as find_missing_migration
from dorkstore.repositories.messages import RelayIndex

__all__ = ["cli", "main"]


class _Target:
    """The database a command works on, opened on demand.

    --db wins, then $DORK_DATABASE_URL, then $DORK_HOME/dork.db (None here).
    """

    def __init__(self, target: str | None) -> None:
        if target is None:
            target = os.environ.get(DATABASE_URL_VARIABLE) or None
        self.target = None if target is None else _well_formed(target)

    @property
    def path(self) -> Path | None:
        """The database file; None for a PostgreSQL URL or ":memory:"."""
        if self.target is None:
            return default_path()
        if self.target == MEMORY or is_url(self.target):
            return None
        return Path(self.target)

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
        hidden = _passwords(sys.argv[1:] if args is None else args)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            _error(exc.format_message(), hidden)
            status = exc.exit_code
        except click.exceptions.Abort:
            _error("aborted", hidden)
            status = 1
        except Exception as exc:  # the promise: one line, never a traceback
            _error(_describe(exc), hidden)
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
    help=(
        "Database file, :memory: or postgresql://USER:PASSWORD@HOST:PORT/DBNAME. "
        "Default: $DORK_DATABASE_URL, else $DORK_HOME/dork.db (~/.dork/dork.db)."
    ),
)
@click.version_option(package_name="dorkstore")
@click.pass_context
def cli(ctx: click.Context, target: str | None) -> None:
    """Manage the dorkstore database of scheduler, relay and mesh: SQLite or PostgreSQL."""
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
    """Show the database, its size, engine version, migrations and row counts.

    On SQLite: the file, its size with the -wal file, SQLite's version and the
    journal mode. On PostgreSQL: the URL without its password, the database's
    size and the server's version.
    """
    target.open_existing()
    info = admin.status()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"database: {info['path']}")
    if info["backend"] == "sqlite":
        click.echo(f"size: {info['size_bytes']} bytes (with -wal)")
        click.echo(f"sqlite: {info['sqlite_version']}")
        click.echo(f"journal mode: {info['journal_mode']}")
    else:
        click.echo(f"size: {info['size_bytes']} bytes")
        click.echo(f"server: PostgreSQL {info['server_version']}")
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
    """Exit 1 and print the missing migration if the models changed without one.

    It checks the migration files, not a database: --db does not matter.
    """
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

    The copy is consistent even while other processes keep writing. A
    PostgreSQL database is dumped with pg_dump -Fc (restore with pg_restore).
    """
    target.open_existing()
    click.echo(f"backed up to {admin.backup(dest)}")


@cli.command()
@click.pass_obj
def doctor(target: _Target) -> None:
    """Check integrity, foreign keys, JSON columns and migrations; exit 1 naming any problem.

    On PostgreSQL the server keeps its own files whole: there is no integrity_check.
    """
    target.open_existing()
    findings = admin.doctor()
    for name, trouble in findings:
        click.echo(f"{name}: " + ("; ".join(trouble) if trouble else "ok"))
    if any(trouble for _, trouble in findings):
        raise click.exceptions.Exit(1)


def _database(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """Refuse an empty database argument, and a malformed URL."""
    if not value:
        raise click.BadParameter("it is empty; give a file or a postgresql:// URL")
    return _well_formed(value)


@cli.command("copy")
@click.argument("source", callback=_database)
@click.argument("dest", callback=_database)
def copy_command(source: str, dest: str) -> None:
    """Copy every row of the database SOURCE into the empty database DEST, then verify.

    SOURCE and DEST are files or postgresql:// URLs (--db does not apply), so
    this moves a database from SQLite to PostgreSQL and back. SOURCE must be
    migrated by this dorkstore and is only read, as one snapshot. DEST is
    created or migrated and must hold no rows; it is filled in one transaction,
    so a failed copy leaves it empty. Every table is then compared row by row:
    exit 1 when anything differs.
    """
    report = copy_database(source, dest)
    for line in report.lines():
        click.echo(line)
    if not report.verified:
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


def _well_formed(target: str) -> str:
    """Return `target`; raise DatabaseError for a URL whose parts cannot be read.

    The message never repeats the URL: a password with an unescaped ``/``,
    ``?`` or ``#`` ends the URL's host part early, and would be shown as a port.
    """
    try:
        if is_url(target):
            urlsplit(target).port  # noqa: B018  # raises ValueError when malformed
    except ValueError:
        raise DatabaseError(
            "malformed database URL: expected postgresql://USER:PASSWORD@HOST:PORT/DBNAME, "
            "with / ? # @ : in the user or password written as %2F %3F %23 %40 %3A"
        ) from None
    return target


def _passwords(args: Iterable[str]) -> set[str]:
    """Return the passwords of the URLs among `args` and in $DORK_DATABASE_URL."""
    found = set()
    for arg in (*args, os.environ.get(DATABASE_URL_VARIABLE, "")):
        for value in (arg, arg.partition("=")[2]):  # --db=URL too
            try:
                password = urlsplit(value).password if is_url(value) else None
            except ValueError:  # not a URL after all
                continue
            if password:
                found |= {password, unquote(password)}
    return found


def _error(message: str, hidden: Iterable[str] = ()) -> None:
    """Print `message` as one line on stderr, never showing a password."""
    line = " ".join(message.split()) or "unknown error"
    for password in sorted(hidden, key=len, reverse=True):
        line = line.replace(password, "***")
    click.echo(f"dorkstore: error: {line}", err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
