"""PostgreSQL through psycopg 3: one shared database for agents on several machines.

Install with ``pip install 'dorkstore[postgres]'``. Every guarantee SQLite gives
by locking its one file is given here by locks too, narrower where they can be:

- a read-then-write step takes a transaction-scoped advisory lock named after
  what it reads (one agent's budget, the relay index) or, without a name, one
  lock for the whole database; bulk writes therefore never deadlock each other;
- ``lock_timeout`` follows SQLite's busy timeout (5 s), so waiting for a lock
  ends the same way, in `DatabaseBusyError`;
- migrations run under a session advisory lock with the runner's deadline;
- text that is ordered (ids, timestamps, cursors) must order bytewise, so the
  database must use the C collation (``--locale=C.UTF-8`` or ``LC_COLLATE 'C'``):
  opening one that does not is refused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import peewee as pw

from dorkstore import sqlite_files
from dorkstore.backends.base import (
    DEFAULT_CACHE_MB,
    Backend,
    Durability,
    ErrorKind,
    driver_error,
)
from dorkstore.errors import DatabaseError, MigrationError

__all__ = ["POSTGRES", "URL_SCHEMES", "PostgresBackend", "is_url", "redacted"]

URL_SCHEMES = ("postgresql", "postgres")
#: Collations whose order is the bytewise order of UTF-8 text.
_BYTEWISE = {"C", "POSIX", "C.UTF-8", "C.utf8", "ucs_basic"}
#: SQLSTATE (or its class) -> what it means, the first match winning. Lock timeouts,
#: deadlocks and serialization failures mean another session was in the way.
_SQLSTATES: tuple[tuple[str, ErrorKind], ...] = (
    ("23505", "unique"),
    ("23503", "foreign_key"),
    ("22", "constraint"),
    ("23", "constraint"),
    ("55P03", "busy"),
    ("40P01", "busy"),
    ("40001", "busy"),
    ("08", "connection"),
    ("57P", "connection"),
)
#: Per connection: parse JSON text, or NULL when it is not JSON (PostgreSQL 15 has
#: no pg_input_is_valid), so listings and checks never fail on a bad row.
_TRY_JSONB = (
    "CREATE OR REPLACE FUNCTION pg_temp.dorkstore_jsonb(t text) RETURNS jsonb "
    "LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RETURN t::jsonb; "
    "EXCEPTION WHEN others THEN RETURN NULL; END $$"
)


def is_url(target: str) -> bool:
    """Return True for a ``postgresql://`` (or ``postgres://``) URL."""
    return urlsplit(target).scheme in URL_SCHEMES


def redacted(url: str) -> str:
    """Return `url` without its password, safe to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _lock_key(name: str) -> int:
    """Return a signed 64-bit advisory lock key for `name`."""
    return int.from_bytes(
        hashlib.sha256(f"dorkstore:{name}".encode()).digest()[:8], "big", signed=True
    )


class _Postgres(pw.PostgresqlDatabase):
    """Peewee's PostgreSQL database on psycopg 3, remembering its URL and its connections."""

    url = ""
    collation_checked = False

    def _connect(self) -> Any:
        connection = super()._connect()  # type: ignore[misc]  # peewee's, untyped
        with connection.cursor() as cursor:
            cursor.execute(_TRY_JSONB)
        self.connections().add(connection)
        return connection

    def connections(self) -> weakref.WeakSet[Any]:
        """Return the open connections of every thread (Peewee keeps them per thread).

        Only this process's: a forked child must never close the ones it
        inherited, since closing sends the server a goodbye on the parent's socket.
        """
        found: tuple[int, weakref.WeakSet[Any]] | None = self.__dict__.get("_connections")
        if found is None or found[0] != os.getpid():
            found = self.__dict__["_connections"] = (os.getpid(), weakref.WeakSet())
        return found[1]

    def rollback(self) -> None:
        """Roll back; after a lost connection there is nothing left to roll back.

        The server rolled the transaction back when the session ended. The
        last transaction to unwind drops the connection, so the next call reconnects.
        """
        state = self._state  # type: ignore[attr-defined]  # Peewee's per-thread connection
        if state.conn is not None and state.conn.closed:
            if not state.transactions:
                state.reset()
            return
        super().rollback()


class PostgresBackend(Backend):
    """A PostgreSQL database named by a URL, through psycopg 3."""

    name = "postgresql"

    # --- opening ------------------------------------------------------------------

    def owns(self, db: pw.Database) -> bool:
        """Return True for a Peewee PostgreSQL database."""
        return isinstance(db, pw.PostgresqlDatabase)

    def open(
        self, target: str, *, durability: Durability = "normal", cache_mb: int = DEFAULT_CACHE_MB
    ) -> pw.Database:
        """Return an unconnected database for a ``postgresql://user:pw@host:port/db`` URL.

        "normal" durability keeps the server's own setting; "full" asks for
        ``synchronous_commit=on`` on every connection. `cache_mb` does not
        apply: the server's ``shared_buffers`` is the cache, shared by all.
        """
        try:
            import psycopg  # noqa: F401, PLC0415  # only to say what is missing
        except ImportError as exc:
            raise DatabaseError(
                "PostgreSQL needs psycopg 3: install it with pip install 'dorkstore[postgres]'"
            ) from exc
        try:
            parts = urlsplit(target)
            port = parts.port
        except ValueError:  # its message would repeat the URL, password included
            raise DatabaseError(
                "the database URL is malformed: postgresql://USER:PASSWORD@HOST:PORT/DBNAME, "
                "with / ? # @ : in the user or password written as %2F %3F %23 %40 %3A"
            ) from None
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise DatabaseError(f"{redacted(target)} names no database (…/DBNAME)")
        # Read now, not at import: the busy timeout in force when the database opens.
        timeout = sqlite_files.BUSY_TIMEOUT_MS
        options = f"-c lock_timeout={timeout} -c idle_in_transaction_session_timeout=0"
        if durability == "full":
            options += " -c synchronous_commit=on"
        connect: dict[str, Any] = {"options": options, "prefer_psycopg3": True}
        for key, value in (
            ("user", parts.username),
            ("password", parts.password),
            ("host", parts.hostname),
            ("port", port),
        ):
            if value is not None:
                connect[key] = unquote(value) if isinstance(value, str) else value
        db = _Postgres(name, **connect)
        db.url = redacted(target)
        return db

    def connect(self, db: pw.Database) -> None:
        """Connect this thread; refuse a database whose text order is not bytewise."""
        try:
            db.connect(reuse_if_open=True)
            if not getattr(db, "collation_checked", True):
                (collation,) = db.execute_sql(
                    "SELECT datcollate FROM pg_database WHERE datname = current_database()"
                ).fetchone()
                if collation not in _BYTEWISE:
                    raise DatabaseError(
                        f"{self.location(db)} sorts text by {collation!r}; dorkstore orders ids "
                        "and timestamps bytewise: create the database with LC_COLLATE 'C' "
                        "(createdb --locale=C.UTF-8 --template=template0)"
                    )
                db.collation_checked = True  # type: ignore[attr-defined]  # a _Postgres
        except pw.PeeweeException as exc:
            raise DatabaseError(f"cannot open {self.location(db)}: {exc}") from exc

    def release(self, db: pw.Database) -> None:
        """Close the idle connections other threads (worker pools) still hold to `db`.

        A connection inside a transaction is left to finish it: the thread keeps
        its database until its transaction ends.
        """
        if not isinstance(db, _Postgres):
            return
        import psycopg  # noqa: PLC0415  # present: db was opened with it

        for connection in list(db.connections()):
            idle = connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            if idle and not connection.closed:
                connection.close()

    def location(self, db: pw.Database) -> str:
        """Return the URL without its password."""
        return str(getattr(db, "url", "") or db.database)

    # --- errors and locks ---------------------------------------------------------

    def classify(self, exc: BaseException) -> ErrorKind | None:
        """Classify by SQLSTATE, never by the message's words."""
        try:
            import psycopg  # noqa: PLC0415  # the extra may be missing: then it is not ours
        except ImportError:
            return None
        error = driver_error(exc, psycopg.Error)
        if error is None:
            return None
        state = error.sqlstate or ""
        for prefix, kind in _SQLSTATES:
            if state.startswith(prefix):
                return kind
        if isinstance(error, psycopg.OperationalError):  # no SQLSTATE: the socket went away
            return "connection"
        return "database"

    @contextmanager
    def write_transaction(self, db: pw.Database, key: str | None = None) -> Iterator[Any]:
        """Begin a transaction holding the advisory lock of `key` (default: the whole database).

        Transaction-scoped: the lock ends with the transaction. Nested in
        another transaction it is a savepoint, and takes its lock there.
        """
        with db.atomic() as transaction:
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_lock_key(key or "database"),))
            yield transaction

    def recover(self, db: pw.Database) -> None:
        """Drop this thread's broken connection, so that the next call reconnects.

        Inside a transaction the connection is closed but Peewee's stack of open
        transactions is kept, so that they unwind as usual; the last one out
        drops the connection (`_Postgres.rollback`).
        """
        state = db._state  # type: ignore[attr-defined]  # Peewee's per-thread connection
        if state.conn is not None:
            with suppress(Exception):  # it is broken already
                state.conn.close()
        if not state.transactions:
            state.reset()

    # --- SQL only PostgreSQL understands ------------------------------------------

    def latency_ms(self, later: pw.Node, earlier: pw.Node) -> pw.Node:
        """Return ``later - earlier`` in whole milliseconds, through timestamptz."""
        seconds = pw.fn.EXTRACT(
            pw.NodeList(
                (
                    pw.SQL("EPOCH FROM"),
                    pw.Cast(later, "timestamptz") - pw.Cast(earlier, "timestamptz"),
                )
            )
        )
        return pw.fn.ROUND(seconds * pw.SQL("1000"))

    def json_array_contains(self, column: pw.Node, value: pw.Node) -> pw.Node:
        """Return EXISTS over jsonb_array_elements_text of the column, if it is an array."""
        parsed = _try_jsonb(column)
        array = pw.Case(None, [(pw.fn.jsonb_typeof(parsed) == pw.SQL("'array'"), parsed)])
        return pw.NodeList(
            (
                pw.SQL("EXISTS (SELECT 1 FROM jsonb_array_elements_text("),
                array,
                pw.SQL(") AS element WHERE element = "),
                value,
                pw.SQL(")"),
            )
        )

    def json_invalid(self, column: pw.Node, *, text_array: bool = False) -> pw.Node:
        """Return true when `column` is not strict JSON (jsonb refuses NaN and Infinity)."""
        parsed = _try_jsonb(column)
        invalid: pw.Node = pw.NodeList(
            (column, pw.SQL("IS NOT NULL AND"), parsed, pw.SQL("IS NULL"))
        )
        if not text_array:
            return invalid
        not_strings = pw.NodeList(
            (
                pw.SQL("EXISTS (SELECT 1 FROM jsonb_array_elements("),
                parsed,
                pw.SQL(") AS element WHERE jsonb_typeof(element) <> 'string')"),
            )
        )
        not_array = pw.NodeList((pw.fn.jsonb_typeof(parsed), pw.SQL("<> 'array'")))
        return pw.NodeList(
            (
                pw.SQL("("), invalid, pw.SQL(") OR ("), parsed, pw.SQL("IS NOT NULL AND ("),
                not_array, pw.SQL("OR"), not_strings, pw.SQL("))"),
            )
        )  # fmt: skip

    def delete_unlocked(self, model: type[pw.Model], condition: pw.Node) -> pw.Node:
        """Return a DELETE of the matching rows that ``FOR UPDATE SKIP LOCKED`` could lock."""
        free = model.select(pw.SQL("ctid")).where(condition).for_update(skip_locked=True)
        return model.delete().where(pw.SQL("ctid").in_(free))

    def is_wal_mode(self, db: pw.Database) -> bool:
        """PostgreSQL always logs ahead; SQLite's journal modes do not apply: False."""
        return False

    def query_plan(self, db: pw.Database, sql: str, params: tuple[Any, ...]) -> list[str]:
        """Return ``EXPLAIN``'s lines."""
        return [str(row[0]) for row in db.execute_sql(f"EXPLAIN {sql}", params).fetchall()]

    # --- migrations ---------------------------------------------------------------

    @contextmanager
    def migration_lock(self, db: pw.Database, timeout: float) -> Iterator[None]:
        """Hold a session advisory lock; raise MigrationError after `timeout` seconds."""
        self.connect(db)
        key = _lock_key("migrations")
        deadline = time.monotonic() + timeout
        while not db.execute_sql("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
            if time.monotonic() > deadline:
                raise MigrationError(
                    f"another process has held the migration lock of {self.location(db)} "
                    f"for {timeout:.0f} s; is a migration stuck?"
                )
            time.sleep(0.05)
        try:
            yield
        finally:
            db.execute_sql("SELECT pg_advisory_unlock(%s)", (key,))

    def history_before_connect(self, db: pw.Database, table: str) -> list[tuple[str, bool]] | None:
        """Nothing to read first: connecting writes nothing on PostgreSQL."""
        return None

    @contextmanager
    def schema_change(self, db: pw.Database, action: str) -> Iterator[None]:
        """One transaction: PostgreSQL's DDL is transactional and its foreign keys immediate."""
        if db.in_transaction():
            raise MigrationError(f"cannot {action} inside a transaction")
        try:
            with db.atomic():
                yield
        except pw.PeeweeException as exc:
            raise MigrationError(f"cannot {action}: {exc}; nothing was changed") from exc

    def backup_before_migrating(self, db: pw.Database, last_applied: str, keep: int) -> None:
        """Nothing: a server's backups are its operator's (`dorkstore backup` runs pg_dump)."""

    # --- operators ----------------------------------------------------------------

    def backup(self, db: pw.Database, dest: Path) -> Path:
        """Write ``pg_dump -Fc`` of the database to the new file `dest`."""
        if dest.exists():
            raise DatabaseError(f"cannot create backup {dest}: it already exists")
        pg_dump = _client("pg_dump", "backup of a PostgreSQL database")
        # Written private under a temporary name and linked when complete, as
        # SQLite's backups are: dest never holds a partial dump, nor a readable one.
        partial = sqlite_files.partial_path(dest)
        try:
            os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as exc:
            raise DatabaseError(f"cannot create backup {dest}: {exc.strerror}") from exc
        command = [pg_dump, "-Fc", "--no-password", "-f", str(partial)]
        try:
            done = subprocess.run(  # noqa: S603 - our own arguments
                command, env=_client_environment(db), capture_output=True, text=True, check=False
            )
            if done.returncode:
                raise DatabaseError(f"pg_dump failed: {done.stderr.strip() or done.returncode}")
            os.link(partial, dest)  # fails, rather than overwrites, if dest appeared meanwhile
        except OSError as exc:
            raise DatabaseError(f"backup to {dest} failed: {exc.strerror}") from exc
        finally:
            partial.unlink(missing_ok=True)
        return dest

    def shell(self, db: pw.Database, *, write: bool, commands: Sequence[str]) -> int:
        """Run psql on the database; return its exit status (it reports its own errors).

        Sessions are read-only unless `write`: ``default_transaction_read_only``,
        which a user's SET can undo. The password goes to psql in its
        environment, never on its command line. Ctrl-C belongs to psql while it
        runs (it cancels a query there), not to this process.
        """
        psql = _client("psql", "a shell on a PostgreSQL database")
        environment = _client_environment(db)
        if not write:
            options = environment.get("PGOPTIONS", "")
            environment["PGOPTIONS"] = f"{options} -c default_transaction_read_only=on".strip()
        command = [psql, "--no-password", "-v", "ON_ERROR_STOP=1"]
        for sql in commands:
            command += ["-c", sql]
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            done = subprocess.run(command, env=environment, check=False)  # noqa: S603
        except OSError as exc:
            raise DatabaseError(f"cannot run psql: {exc.strerror}") from exc
        finally:
            signal.signal(signal.SIGINT, previous)
        return done.returncode

    def describe(self, db: pw.Database) -> dict[str, Any]:
        """Return the server's version and the database's size."""
        version, size = db.execute_sql(
            "SELECT current_setting('server_version'), pg_database_size(current_database())"
        ).fetchone()
        return {"size_bytes": int(size), "server_version": str(version)}

    def health_checks(self, db: pw.Database) -> Iterator[tuple[str, list[str]]]:
        """Yield rows whose foreign key points nowhere (PostgreSQL enforces them; still checked)."""
        orphans = db.execute_sql(
            "SELECT r.id, r.schedule_id FROM pulse_runs r LEFT JOIN pulse_schedules s "
            "ON s.id = r.schedule_id WHERE s.id IS NULL LIMIT 10"
        ).fetchall()
        yield (
            "foreign_key_check",
            [f"pulse_runs {run} has no pulse_schedules {schedule}" for run, schedule in orphans],
        )


def _try_jsonb(column: pw.Node) -> pw.ColumnBase:
    """Return the column parsed as jsonb, or NULL where it is not JSON."""
    return pw.Function("pg_temp.dorkstore_jsonb", (column,))


POSTGRES = PostgresBackend()


def _client(name: str, purpose: str) -> str:
    """Return the path of PostgreSQL's client program `name` (Debian keeps it off PATH)."""
    found = shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None
    )
    if found is None:
        raise DatabaseError(f"{purpose} needs {name} on PATH")
    return found


def _client_environment(db: pw.Database) -> dict[str, str]:
    """Return the environment naming `db` for a client program (libpq's PG* variables).

    Variables, not arguments: a database name holding ``=`` would be read as
    a connection string, and a password on a command line is visible to every
    user of the machine. A URL without a password leaves the user's own
    PGPASSWORD (or ~/.pgpass) in force, as the library's connection does.
    """
    params = db.connect_params
    environment = dict(os.environ, PGDATABASE=str(db.database))
    for variable, key in (
        ("PGHOST", "host"),
        ("PGPORT", "port"),
        ("PGUSER", "user"),
        ("PGPASSWORD", "password"),
    ):
        if params.get(key):
            environment[variable] = str(params[key])
    return environment
