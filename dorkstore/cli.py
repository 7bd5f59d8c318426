"""The ``dorkstore`` command.

Every error, bad arguments included, is one line on stderr, never a
traceback. The exit status says what happened (`EXIT_OK` ... `EXIT_INTERRUPTED`).
Commands import what they need when they run, so that ``--help``,
``--version`` and shell completion start fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import click
import peewee as pw

from dorkstore import __version__
from dorkstore.backends.postgres import is_url
from dorkstore.backends.sqlite import MEMORY
from dorkstore.db import DATABASE_URL_VARIABLE, close_db, default_path
from dorkstore.errors import DatabaseError, DorkstoreError, RefusedError

__all__ = [
    "EXIT_ERROR",
    "EXIT_FINDINGS",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "cli",
    "main",
]

#: The command did what was asked.
EXIT_OK = 0
#: It ran and found problems (doctor, check-migrations, copy's verification), or
#: refused or was declined before changing anything.
EXIT_FINDINGS = 1
#: The command line was wrong: an unknown option, a missing argument.
EXIT_USAGE = 2
#: An error stopped it: a database that cannot be opened, a lock held too long...
EXIT_ERROR = 3
#: Interrupted (Ctrl-C), as shells report SIGINT.
EXIT_INTERRUPTED = 130

_EPILOG = """\b
Options --db, -v/--verbose, -q/--quiet and --json may come before or after
the command's name.

\b
Exit status:
  0    ok
  1    findings (doctor, check-migrations, copy), or refused or declined
  2    bad usage
  3    error
  130  interrupted

\b
Shell completion (bash; zsh and fish alike, with zsh_source or fish_source):
  eval "$(_DORKSTORE_COMPLETE=bash_source dorkstore)"
"""


class _Settings:
    """What the options shared by every command chose, and how output honours them."""

    def __init__(self) -> None:
        self.target: str | None = None
        self.verbose = False
        self.quiet = False
        self.as_json = False

    # --- the database -----------------------------------------------------------

    @property
    def database(self) -> str | None:
        """The target: --db, then $DORK_DATABASE_URL, then None ($DORK_HOME/dork.db)."""
        target = self.target
        if target is None:
            target = os.environ.get(DATABASE_URL_VARIABLE) or None
        return None if target is None else _well_formed(target)

    @property
    def path(self) -> Path | None:
        """The database file; None for a PostgreSQL URL or ":memory:"."""
        target = self.database
        if target is None:
            return default_path()
        if target == MEMORY or is_url(target):
            return None
        return Path(target)

    def open(self, *, migrate: bool) -> Any:
        """Open (and with `migrate`, create or migrate) the database; return it."""
        from dorkstore.db import init_db  # noqa: PLC0415 - see the module docstring

        return init_db(self.database, migrate=migrate)

    def open_existing(self) -> Any:
        """Open a database that must already exist, migrating nothing."""
        path = self.path
        if path is not None and not path.exists():
            raise DatabaseError(f"no database at {path}")
        return self.open(migrate=False)

    def refuse_database(self, why: str) -> None:
        """Raise a usage error if --db was given to a command that does not use it."""
        if self.target is not None:
            raise click.UsageError(f"--db does not apply: {why}")

    # --- output -------------------------------------------------------------------

    def say(self, line: str) -> None:
        """Print a line of the report (not with --quiet or --json)."""
        if not (self.quiet or self.as_json):
            click.echo(line)

    def detail(self, line: str) -> None:
        """Print a line only --verbose asks for (not with --json)."""
        if self.verbose and not self.as_json:
            click.echo(line)

    def finding(self, line: str) -> None:
        """Print a problem found (also with --quiet; not with --json)."""
        if not self.as_json:
            click.echo(line)

    def report(self, data: object) -> None:
        """Print the command's result as one JSON document, with --json."""
        if self.as_json:
            click.echo(json.dumps(data, indent=2))

    @property
    def shows_progress(self) -> bool:
        """Whether a progress bar is wanted: on a terminal, without --quiet or --json."""
        return sys.stdout.isatty() and not (self.quiet or self.as_json)


def _setting(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """Return an option callback storing a given value on the shared settings."""

    def store(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value == "":
            raise click.BadParameter("it is empty; give a file or a postgresql:// URL", ctx, param)
        if value is not None and value is not False:
            settings = ctx.ensure_object(_Settings)
            setattr(settings, name, value)
            if settings.verbose and settings.quiet:
                raise click.UsageError("-v/--verbose and -q/--quiet exclude each other")

    return store


_DB = click.option(
    "--db",
    metavar="TARGET",
    expose_value=False,
    callback=_setting("target"),
    help=(
        "Database file, :memory: or postgresql://USER:PASSWORD@HOST:PORT/DBNAME. "
        "Default: $DORK_DATABASE_URL, else $DORK_HOME/dork.db (~/.dork/dork.db)."
    ),
)


def _flag(*names: str, setting: str, text: str) -> Callable[[Any], Any]:
    """Return a shared flag option, described by `text`, that sets `setting`."""
    return click.option(
        *names, is_flag=True, expose_value=False, callback=_setting(setting), help=text
    )


_VERBOSE = _flag(
    "-v", "--verbose", setting="verbose", text="Say more: name every file or row skipped, and why."
)
_QUIET = _flag("-q", "--quiet", setting="quiet", text="Print only errors and problems found.")
_JSON = _flag("--json", setting="as_json", text="Print one JSON document, for scripts.")


def _options(*, database: bool = True, reports: bool = True) -> Callable[[Any], Any]:
    """Add the shared options to a command, so they work after its name too."""

    def add(command: Any) -> Any:
        chosen = [_VERBOSE, _QUIET, *([_JSON] if reports else []), *([_DB] if database else [])]
        for option in chosen:
            command = option(command)
        return command

    return add


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
        except click.UsageError as exc:
            _error(exc.format_message(), hidden)
            status = EXIT_USAGE
        except click.ClickException as exc:
            _error(exc.format_message(), hidden)
            status = EXIT_ERROR
        except click.exceptions.Abort as exc:
            # click raises Abort from the KeyboardInterrupt, or "from None" at a prompt.
            interrupted = isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt)
            _error("interrupted" if interrupted else "aborted", hidden)
            status = EXIT_INTERRUPTED if interrupted else EXIT_FINDINGS
        except KeyboardInterrupt:
            _error("interrupted", hidden)
            status = EXIT_INTERRUPTED
        except RefusedError as exc:
            _error(str(exc), hidden)
            status = EXIT_FINDINGS
        except Exception as exc:  # the promise: one line, never a traceback
            _error(_describe(exc), hidden)
            status = EXIT_ERROR
        else:
            # click returns the status of ctx.exit() / Exit, or the command's return value.
            status = result if isinstance(result, int) else EXIT_OK
        if standalone_mode:
            sys.exit(status)
        return status


@click.group(
    cls=_OneLineErrors,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=_EPILOG,
)
@_options()
@click.version_option(__version__, "-V", "--version", prog_name="dorkstore")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Manage the dorkstore database of scheduler, relay and mesh: SQLite or PostgreSQL."""
    ctx.ensure_object(_Settings)
    ctx.call_on_close(close_db)


@cli.command()
@_options()
@click.pass_obj
def migrate(settings: _Settings) -> None:
    """Create or migrate the database and list the migrations applied."""
    from dorkstore.db import migrate_db  # noqa: PLC0415

    applied = migrate_db(settings.database)
    for name in applied:
        settings.say(f"applied {name}")
    if not applied:
        settings.say("nothing to migrate")
    settings.report({"applied": applied})


@cli.command()
@_options()
@click.pass_obj
def status(settings: _Settings) -> None:
    """Show the database, its size, engine version, migrations and row counts.

    On SQLite: the file, its size with the -wal file, SQLite's version and the
    journal mode. On PostgreSQL: the URL without its password, the database's
    size and the server's version.
    """
    from dorkstore import admin  # noqa: PLC0415

    settings.open_existing()
    info = admin.status()
    settings.report(info)
    settings.say(f"database: {info['path']}")
    if info["backend"] == "sqlite":
        settings.say(f"size: {info['size_bytes']} bytes (with -wal)")
        settings.say(f"sqlite: {info['sqlite_version']}")
        settings.say(f"journal mode: {info['journal_mode']}")
    else:
        settings.say(f"size: {info['size_bytes']} bytes")
        settings.say(f"server: PostgreSQL {info['server_version']}")
    for key in ("applied_migrations", "pending_migrations", "unknown_migrations"):
        label = key.replace("_", " ")
        settings.say(f"{label}: {', '.join(info[key]) or 'none'}")
    for table, count in info["tables"].items():
        settings.say(f"{table} {count}")


@cli.command()
@_options()
@click.pass_obj
def history(settings: _Settings) -> None:
    """List the migrations applied, oldest first, with when; then those pending."""
    from dorkstore.migrate import migration_history, migration_state  # noqa: PLC0415

    db = settings.open_existing()
    entries, pending = migration_history(db), migration_state(db).pending
    for entry in entries:
        additive = "  additive" if entry.additive else ""
        settings.say(f"{entry.name}  {entry.migrated_at or 'unknown time'}{additive}")
    for name in pending:
        settings.say(f"{name}  pending")
    settings.report(
        {"applied": [entry._asdict() for entry in entries], "pending": pending},
    )


@cli.command()
@click.option("--to", "to", metavar="NAME", help="Keep NAME and older; roll back the rest.")
@click.option("--yes", is_flag=True, help="Do not ask: the tables and columns undone are lost.")
@_options()
@click.pass_obj
def rollback(settings: _Settings, to: str | None, yes: bool) -> None:
    """Undo the newest migration, or every migration applied after --to NAME.

    For going back to an older dorkstore release: what the undone migrations
    created is dropped, with its data, after a backup of a SQLite file
    (kept beside it). This release applies them again whenever it opens the
    database, so stop its services first.
    """
    from dorkstore.migrate import rollback as roll_back  # noqa: PLC0415

    undone = roll_back(
        settings.open_existing(),
        to=to,
        count=None if to is not None else 1,
        confirm=None if yes else _confirm,
    )
    for name in undone:
        settings.say(f"rolled back {name}")
    if not undone:
        settings.say("nothing to roll back")
    settings.report({"rolled_back": undone})


def _confirm(names: list[str]) -> None:
    """Ask before rolling back `names` (on stderr); refuse when nobody can be asked."""
    listed = ", ".join(names)
    if not sys.stdin.isatty():
        raise click.UsageError(f"rolling back {listed} loses data: pass --yes")
    question = f"Roll back {listed}? What they created is dropped, with its data."
    if not click.confirm(question, err=True):
        raise RefusedError("nothing rolled back")


@cli.command("check-migrations")
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Migrations to check. Default: the ones dorkstore applies.",
)
@_options(database=False)
@click.pass_obj
def check_migrations(settings: _Settings, directory: Path | None) -> None:
    """Exit 1 and print the missing migration if the models changed without one.

    It checks the migration files, not a database: --db does not apply.
    """
    from dorkstore.migrate import check_migrations as find_missing  # noqa: PLC0415

    settings.refuse_database("check-migrations checks migration files, not a database")
    missing = find_missing(directory)
    settings.report({"ok": missing is None, "missing": missing})
    if missing is None:
        settings.say("migrations match the models")
        return
    settings.finding("the models changed without a migration; it needs:\n")
    settings.finding(missing.rstrip("\n"))
    raise click.exceptions.Exit(EXIT_FINDINGS)


@cli.command("rebuild-index")
@click.argument("maildir", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@click.option(
    "--force", is_flag=True, help="Rebuild even if the index would lose over half its rows."
)
@_options()
@click.pass_obj
def rebuild_index(settings: _Settings, maildir: Path, dry_run: bool, force: bool) -> None:
    """Replace the relay index with what the Maildir tree MAILDIR holds.

    Only rows that differ from their files are written. A rebuild that would
    delete more than half of a non-empty index (an empty or mistyped
    directory) is refused with exit 1 unless --force.
    """
    from dorkstore.repositories.messages import RelayIndex  # noqa: PLC0415

    if dry_run:
        _require_migrated(settings.open_existing())  # a dry run creates and migrates nothing
    else:
        settings.open(migrate=True)
    skipped: list[tuple[str, str]] = []
    with _progress(settings, maildir) as advance:

        def report(path: Path, reason: str | None) -> None:
            if reason is not None:
                skipped.append((str(path), reason))
                settings.detail(f"skipped {path}: {reason}")
            advance()

        result = RelayIndex().reconcile(maildir, report=report, dry_run=dry_run, force=force)
    kinds = Counter(reason.split(":", 1)[0] for _, reason in skipped)
    why = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    verb, written, deleted = (
        ("would index", "to write", "to delete") if dry_run else ("indexed", "written", "deleted")
    )
    settings.say(
        f"{verb} {result.indexed} messages ({result.written} {written}, "
        f"{result.deleted} {deleted} of {result.previous}); skipped {len(skipped)} files"
        + (f" ({why})" if why else "")
    )
    if dry_run and result.loses_over_half:
        settings.say("without --force, the rebuild would be refused: it loses over half the index")
    settings.report(
        {
            **asdict(result),
            "refused_without_force": result.loses_over_half,
            "skipped": [{"path": path, "reason": reason} for path, reason in skipped],
        }
    )


def _require_migrated(db: Any) -> None:
    """Raise DatabaseError when `db` lacks migrations this release ships."""
    from dorkstore.migrate import migration_state  # noqa: PLC0415

    pending = migration_state(db).pending
    if pending:
        raise DatabaseError(
            f"{len(pending)} migrations are pending ({', '.join(pending)}): "
            "run dorkstore migrate first"
        )


@cli.command("import-legacy")
@click.option(
    "--from",
    "source",
    type=click.Path(path_type=Path),
    help="Directory holding the old databases. Default: $DORK_HOME.",
)
@_options()
@click.pass_obj
def import_legacy_command(settings: _Settings, source: Path | None) -> None:
    """Copy the old pulse, relay and mesh databases and schedules.json in, once.

    Rows are copied in short transactions, so a running server keeps writing;
    running it again adds nothing, and completes an import that was interrupted.
    """
    from dorkstore.legacy import count_legacy_rows, import_legacy  # noqa: PLC0415

    settings.open(migrate=True)
    with _bar(settings, lambda: count_legacy_rows(source), "importing") as advance:
        report = import_legacy(source, progress=advance)
    for line in report.lines(each_skipped=settings.verbose):
        settings.say(line)
    settings.report(report.as_dict())


def _non_empty_path(_ctx: click.Context, _param: click.Parameter, value: str) -> Path:
    """Refuse an empty path, which Path("") would quietly turn into the current directory."""
    if not value:
        raise click.BadParameter("the path is empty; give a file, or a directory such as '.'")
    return Path(value)


@cli.command()
@click.argument("dest", type=click.Path(), callback=_non_empty_path)
@_options()
@click.pass_obj
def backup(settings: _Settings, dest: Path) -> None:
    """Copy the database to DEST (a new file, or a directory to put a dated copy in).

    The copy is consistent even while other processes keep writing. A
    PostgreSQL database is dumped with pg_dump -Fc (restore with pg_restore).
    """
    from dorkstore import admin  # noqa: PLC0415

    settings.open_existing()
    path = admin.backup(dest)
    settings.say(f"backed up to {path}")
    settings.report({"path": str(path)})


@cli.command()
@_options()
@click.pass_obj
def doctor(settings: _Settings) -> None:
    """Check integrity, foreign keys, JSON columns and migrations; exit 1 naming any problem.

    On PostgreSQL the server keeps its own files whole: there is no integrity_check.
    """
    from dorkstore import admin  # noqa: PLC0415

    settings.open_existing()
    findings = admin.doctor()
    for name, trouble in findings:
        if trouble:
            settings.finding(f"{name}: " + "; ".join(trouble))
        else:
            settings.say(f"{name}: ok")
    healthy = not any(trouble for _, trouble in findings)
    settings.report({"ok": healthy, "checks": dict(findings)})
    if not healthy:
        raise click.exceptions.Exit(EXIT_FINDINGS)


@cli.command()
@click.option("--write", is_flag=True, help="Allow changes (read-only without it).")
@click.argument("commands", nargs=-1, metavar="[SQL|.COMMAND]...")
@_options(reports=False)
@click.pass_obj
def shell(settings: _Settings, write: bool, commands: tuple[str, ...]) -> None:
    """Open a SQL shell on the database: APSW's on SQLite, psql on PostgreSQL.

    APSW's shell runs the same SQLite as dorkstore, with its busy timeout and
    foreign keys on; Debian's sqlite3 may be older than the WAL-reset fix. It
    opens the file read-only unless --write (on PostgreSQL: read-only
    transactions, which a SET can undo). With COMMANDS it runs them and exits.
    """
    from dorkstore.backends import backend_of  # noqa: PLC0415

    if settings.as_json:
        raise click.UsageError("shell prints what its SQL selects: --json does not apply")
    db = settings.open_existing()
    if backend_of(db).shell(db, write=write, commands=commands):
        raise click.exceptions.Exit(EXIT_ERROR)  # the shell has said what went wrong


def _database(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """Refuse an empty database argument, and a malformed URL."""
    if not value:
        raise click.BadParameter("it is empty; give a file or a postgresql:// URL")
    return _well_formed(value)


@cli.command("copy")
@click.argument("source", callback=_database)
@click.argument("dest", callback=_database)
@_options(database=False)
@click.pass_obj
def copy_command(settings: _Settings, source: str, dest: str) -> None:
    """Copy every row of the database SOURCE into the empty database DEST, then verify.

    SOURCE and DEST are files or postgresql:// URLs (--db does not apply), so
    this moves a database from SQLite to PostgreSQL and back. SOURCE must be
    migrated by this dorkstore and is only read, as one snapshot. DEST is
    created or migrated and must hold no rows; it is filled in one transaction,
    so a failed copy leaves it empty. Every table is then compared row by row:
    exit 1 when anything differs.
    """
    from dorkstore.copy import copy_database  # noqa: PLC0415

    settings.refuse_database("copy takes its databases as SOURCE and DEST")
    report = copy_database(source, dest)
    for line in report.lines():
        (settings.say if report.verified else settings.finding)(line)
    settings.report(report.as_dict())
    if not report.verified:
        raise click.exceptions.Exit(EXIT_FINDINGS)


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
def _progress(settings: _Settings, maildir: Path) -> Iterator[Callable[[], None]]:
    """Yield a function to call per file: a progress bar on a terminal, nothing otherwise."""
    if not maildir.is_dir():
        yield lambda: None
        return
    from dorkstore.maildir import message_files  # noqa: PLC0415

    with _bar(settings, lambda: sum(1 for _ in message_files(maildir)), "indexing") as advance:
        yield lambda: advance(1)


@contextmanager
def _bar(
    settings: _Settings, total: Callable[[], int], label: str
) -> Iterator[Callable[[int], None]]:
    """Yield a function advancing a progress bar by n steps, when one is wanted."""
    if not settings.shows_progress:
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
