"""The interface every backend implements: what only one database engine understands."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Literal, TypeVar

import peewee as pw

__all__ = ["DEFAULT_CACHE_MB", "Backend", "Durability", "ErrorKind", "Target", "driver_error"]

#: The page cache of each connection, in MiB, where a backend has one (SQLite).
DEFAULT_CACHE_MB = 16

E = TypeVar("E", bound=BaseException)

#: An `init_db` target: a path, ``":memory:"`` or (later) a URL.
Target = str | os.PathLike[str]

#: How hard a commit holds on to the disk (`init_db(durability=...)`).
Durability = Literal["normal", "full"]

#: What a driver exception means, whatever the driver: a unique key refused the
#: row; a foreign key did; another constraint did; another connection held a
#: lock past the timeout; the connection to a server was lost; the database
#: failed otherwise.
ErrorKind = Literal["unique", "foreign_key", "constraint", "busy", "connection", "database"]


def driver_error(exc: BaseException, kind: type[E]) -> E | None:
    """Return the driver exception of type `kind` behind `exc`, or None.

    Peewee wraps a driver's exception in its own, passing it as the first
    argument and chaining it; a driver error may also arrive bare.
    """
    for candidate in (exc, exc.__cause__, exc.__context__, *exc.args[:1]):
        if isinstance(candidate, kind):
            return candidate
    return None


class Backend(ABC):
    """One database engine: how to open it, lock it, read its errors and speak its dialect.

    Repositories, the migration runner and the command line ask the backend of
    the current database for these; nothing else imports a driver.
    """

    #: A short name for messages and `status`: ``"sqlite"``.
    name: str

    # --- opening ------------------------------------------------------------------

    @abstractmethod
    def owns(self, db: pw.Database) -> bool:
        """Return True when `db` is a database of this backend."""

    @abstractmethod
    def open(
        self, target: str, *, durability: Durability = "normal", cache_mb: int = DEFAULT_CACHE_MB
    ) -> pw.Database:
        """Return a new, unconnected database for `target` (a path here, a URL elsewhere).

        `durability` "full" makes every commit wait until it is on disk;
        "normal" is each backend's fast, still crash-safe default. `cache_mb`
        is the page cache of each connection, where the backend has one.
        """

    @abstractmethod
    def connect(self, db: pw.Database) -> None:
        """Connect this thread to `db`; raise DatabaseError when it cannot be used."""

    @abstractmethod
    def release(self, db: pw.Database) -> None:
        """Free what `db` holds beyond this thread's connection (it is no longer current)."""

    @abstractmethod
    def location(self, db: pw.Database) -> str:
        """Return where `db` lives, safe to print (a path; a URL without its password)."""

    # --- errors and locks ---------------------------------------------------------

    @abstractmethod
    def classify(self, exc: BaseException) -> ErrorKind | None:
        """Return what a driver (or Peewee-wrapped) exception means; None if not this driver's."""

    @abstractmethod
    def recover(self, db: pw.Database) -> None:
        """Forget this thread's connection after it was lost, so the next call reconnects."""

    @abstractmethod
    def write_transaction(self, db: pw.Database, key: str | None = None) -> Any:
        """Return a transaction that holds the write lock a read-then-write step needs.

        `key` names what is read and written (an agent's budget, say), for a
        backend that can lock less than the whole database.
        """

    # --- SQL only this backend understands ---------------------------------------

    @abstractmethod
    def latency_ms(self, later: pw.Node, earlier: pw.Node) -> pw.Node:
        """Return ``later - earlier`` in whole milliseconds, for two timestamp text columns."""

    @abstractmethod
    def json_array_contains(self, column: pw.Node, value: pw.Node) -> pw.Node:
        """Return a condition true when the JSON array text in `column` holds the string `value`.

        Text that is not a JSON array holds nothing (never an error).
        """

    @abstractmethod
    def json_invalid(self, column: pw.Node, *, text_array: bool = False) -> pw.Node:
        """Return a condition true when `column` is not strict JSON text (RFC 8259; NULL is fine).

        With `text_array`, true unless it is a JSON array of strings.
        """

    @abstractmethod
    def delete_unlocked(self, model: type[pw.Model], condition: pw.Node) -> pw.Node:
        """Return a DELETE of `model`'s rows matching `condition` that no other transaction holds.

        For housekeeping inside a narrow lock (pruning every agent's expired
        budget buckets while holding one agent's): rows another transaction
        has locked are left for a later call instead of waited for.
        """

    @abstractmethod
    def is_wal_mode(self, db: pw.Database) -> bool:
        """Return True when `db` runs in write-ahead-log mode."""

    @abstractmethod
    def query_plan(self, db: pw.Database, sql: str, params: tuple[Any, ...]) -> list[str]:
        """Return the plan of a statement, one line per step (for tests of index use)."""

    # --- migrations ---------------------------------------------------------------

    @abstractmethod
    def migration_lock(self, db: pw.Database, timeout: float) -> AbstractContextManager[None]:
        """Hold the lock that lets one process at a time read the history and migrate."""

    @abstractmethod
    def history_before_connect(self, db: pw.Database, table: str) -> list[tuple[str, bool]] | None:
        """Read (name, additive) per applied migration without writing; None where no need.

        A history without an ``additive`` column marks none additive.
        """

    @abstractmethod
    def schema_change(self, db: pw.Database, action: str) -> AbstractContextManager[None]:
        """One transaction for a schema change, with foreign keys checked before it commits."""

    @abstractmethod
    def backup_before_migrating(self, db: pw.Database, last_applied: str, keep: int) -> None:
        """Keep a copy of a database that holds data before its schema changes."""

    # --- operators ----------------------------------------------------------------

    @abstractmethod
    def backup(self, db: pw.Database, dest: Path) -> Path:
        """Copy `db`, consistently, while others keep writing, to the new file `dest`."""

    @abstractmethod
    def shell(self, db: pw.Database, *, write: bool, commands: Sequence[str]) -> int:
        """Run the engine's own shell on `db`: `commands` in turn, or interactively if none.

        Read-only unless `write`. Returns the shell's exit status (0: all went
        well; otherwise the shell has said why). Raises DatabaseError when the
        shell cannot start.
        """

    @abstractmethod
    def describe(self, db: pw.Database) -> dict[str, Any]:
        """Return facts for `status`: the engine's version and its storage settings."""

    @abstractmethod
    def health_checks(self, db: pw.Database) -> Iterator[tuple[str, list[str]]]:
        """Yield (check name, problems found) for `doctor`; an empty list is ok."""
