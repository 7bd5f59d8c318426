"""The ``dorkstore`` command.

Every error, bad arguments included, is one line on stderr and a non-zero exit
status, never a traceback. Findings (drift, failed checks) go to stdout with
exit status 1.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import apsw
import click
import peewee as pw

from dorkstore import db as dbmodule
from dorkstore import migrate as migrations
from dorkstore.backup import backup_database, unused_path
from dorkstore.errors import DatabaseError, DorkstoreError
from dorkstore.legacy import import_legacy
from dorkstore.models import MODELS
from dorkstore.repositories.relay import RelayIndex, message_files
from dorkstore.timestamps import utc_now

__all__ = ["cli", "main"]


class _Target:
    """The --db option, opened on demand."""

    def __init__(self, target: str | None) -> None:
        self.target = target

    @property
    def path(self) -> Path | None:
        """The database file, or None for ":memory:"."""
        if self.target == dbmodule.MEMORY:
            return None
        return dbmodule.default_path() if self.target is None else Path(self.target)

    def open(self, *, migrate: bool) -> pw.SqliteDatabase:
        """Open (and with `migrate`, create or migrate) the database."""
        return dbmodule.init_db(self.target, migrate=migrate)

    def open_existing(self) -> pw.SqliteDatabase:
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
    ctx.call_on_close(dbmodule.close_db)


@cli.command()
@click.pass_obj
def migrate(target: _Target) -> None:
    """Create or migrate the database and list the migrations applied."""
    applied = dbmodule.migrate_db(target.target)
    for name in applied:
        click.echo(f"applied {name}")
    if not applied:
        click.echo("nothing to migrate")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, for scripts.")
@click.pass_obj
def status(target: _Target, as_json: bool) -> None:
    """Show the file, its size, SQLite and journal mode, migrations and row counts."""
    db = target.open_existing()
    applied = migrations.applied_migrations(db)
    available = migrations.available_migrations()
    tables = set(db.get_tables())
    info: dict[str, Any] = {
        "path": str(target.path) if target.path else dbmodule.MEMORY,
        "size_bytes": _size(target.path),
        "sqlite_version": apsw.sqlitelibversion(),
        "journal_mode": str(db.pragma("journal_mode")),
        "applied_migrations": applied,
        "pending_migrations": [name for name in available if name not in applied],
        "unknown_migrations": [name for name in applied if name not in available],
        "tables": {
            model._meta.table_name: model.select().count()
            for model in sorted(MODELS, key=lambda m: m._meta.table_name)
            if model._meta.table_name in tables
        },
    }
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
    missing = migrations.check_migrations(directory)
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
    """Copy the old pulse, relay and mesh databases and schedules.json in, once."""
    target.open(migrate=True)
    for line in import_legacy(source).lines():
        click.echo(line)


@cli.command()
@click.argument("dest", type=click.Path(path_type=Path))
@click.pass_obj
def backup(target: _Target, dest: Path) -> None:
    """Copy the database to DEST (a new file, or a directory to put a dated copy in).

    The copy is consistent even while other processes keep writing.
    """
    db = target.open_existing()
    if dest.is_dir():
        name = (target.path.name if target.path else "memory.db") + ".backup-"
        dest = unused_path(dest, name + utc_now().strftime("%Y%m%dT%H%M%SZ"))
    click.echo(f"backed up to {backup_database(db, dest)}")


@cli.command()
@click.pass_obj
def doctor(target: _Target) -> None:
    """Check integrity, foreign keys and migration state; exit 1 naming any problem."""
    db = target.open_existing()
    problems = 0

    def finding(name: str, trouble: list[str]) -> None:
        nonlocal problems
        problems += bool(trouble)
        click.echo(f"{name}: " + ("; ".join(trouble) if trouble else "ok"))

    integrity = _pragma_rows(db, "integrity_check")
    finding(
        "integrity_check", [] if integrity == [("ok",)] else [str(row[0]) for row in integrity[:10]]
    )
    orphans = _pragma_rows(db, "foreign_key_check")
    finding(
        "foreign_key_check",
        [
            f"{row[0]} rowid {row[1]} has no {row[2]} row" if len(row) == 4 else str(row[0])
            for row in orphans[:10]
        ],
    )
    applied, available = migrations.applied_migrations(db), migrations.available_migrations()
    state = [f"pending {name}" for name in available if name not in applied]
    state += [
        f"unknown {name} (written by a newer dorkstore)"
        for name in applied
        if name not in available
    ]
    finding("migrations", state)
    if problems:
        raise click.exceptions.Exit(1)


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    return cli.main(argv, prog_name="dorkstore", standalone_mode=False)


def _describe(exc: Exception) -> str:
    if isinstance(exc, DorkstoreError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    if isinstance(exc, OSError | pw.PeeweeException | apsw.Error):
        return f"{type(exc).__name__}: {exc}"
    return f"unexpected {type(exc).__name__}: {exc} (please report this)"


@contextmanager
def _progress(maildir: Path) -> Iterator[Any]:
    """Yield a function to call per file: a progress bar on a terminal, nothing otherwise."""
    if not sys.stdout.isatty() or not maildir.is_dir():
        yield lambda: None
        return
    total = sum(1 for _ in message_files(maildir))
    with click.progressbar(length=total, label="indexing") as bar:
        yield lambda: bar.update(1)


def _pragma_rows(db: pw.SqliteDatabase, pragma: str) -> list[tuple[Any, ...]]:
    """Run a checking pragma; a check that cannot run returns its error as the finding."""
    try:
        return [tuple(row) for row in db.execute_sql(f"PRAGMA {pragma}").fetchall()]
    except (pw.DatabaseError, apsw.Error) as exc:
        return [(f"cannot run: {exc}",)]


def _size(path: Path | None) -> int:
    if path is None:
        return 0
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def _error(message: str) -> None:
    line = " ".join(message.split()) or "unknown error"
    click.echo(f"dorkstore: error: {line}", err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
