"""init_db while other threads are inside a transaction: a group is never split."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

import dorkstore
from dorkstore import DatabaseError, DenialList, database
from tests.helpers import stdlib_sqlite

WAIT = 10  # seconds: a step that takes longer has hung

Block = Callable[[], AbstractContextManager[Any]]
BLOCKS: dict[str, Block] = {
    "database.atomic": lambda: database.atomic("IMMEDIATE"),
    "write_transaction": dorkstore.write_transaction,
}


def denied_paths(path: Path) -> list[str]:
    """Return the denied paths committed in the file `path`, read by another process."""
    result: list[str] = stdlib_sqlite(
        path, "result = [r[0] for r in conn.execute('SELECT path FROM agent_denials ORDER BY 1')]"
    )
    return result


class Group(threading.Thread):
    """Denies /one and /two in one transaction, pausing between them; then waits to be let go.

    The thread stays alive (with its connections) until `release` is set, as a
    worker thread of a server would.
    """

    def __init__(self, block: Block, *, after: str | None = None, fail: bool = False) -> None:
        super().__init__(daemon=True)
        self.block, self.after, self.fail = block, after, fail
        self.inside, self.go_on = threading.Event(), threading.Event()
        self.ended, self.release = threading.Event(), threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        """Run the group, keeping any exception it raises in `error`."""
        denials = DenialList()
        try:
            with self.block():
                denials.deny("/one")
                self.inside.set()
                assert self.go_on.wait(WAIT)
                denials.deny("/two")
                if self.fail:
                    raise LookupError("the caller's own failure")
            if self.after is not None:
                denials.deny(self.after)
        except BaseException as exc:
            self.error = exc
        finally:
            self.inside.set()
            self.ended.set()
            self.release.wait(WAIT)

    def pause_then(self, action: Callable[[], object]) -> None:
        """Run `action` while the group is paused inside its transaction, then let it finish."""
        self.start()
        assert self.inside.wait(WAIT)
        try:
            action()
        finally:
            self.go_on.set()
            assert self.ended.wait(WAIT)

    def finish(self) -> None:
        """Let the thread end, and wait for it."""
        self.release.set()
        self.join(WAIT)


@pytest.fixture
def files(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Two migrated database files, A and B; the proxy points at neither."""
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    for path in (a, b):
        dorkstore.init_db(path)
        dorkstore.close_db()
    yield a, b
    dorkstore.close_db()


@pytest.mark.parametrize("block", BLOCKS.values(), ids=BLOCKS.keys())
def test_init_db_elsewhere_does_not_split_a_group(files: tuple[Path, Path], block: Block) -> None:
    """A group running while another thread calls init_db(B) commits whole in A; B gets nothing."""
    a, b = files
    held = dorkstore.init_db(a)  # callers keep what init_db returns
    group = Group(block, after="/three")
    group.pause_then(lambda: dorkstore.init_db(b))
    group.finish()
    assert group.error is None
    assert (["/one", "/two"], ["/three"]) == (denied_paths(a), denied_paths(b))
    assert held.is_closed()  # this thread's connection to A, closed by init_db(B)


def test_reopening_the_same_file_does_not_split_a_group(files: tuple[Path, Path]) -> None:
    """init_db of the same path in the middle of a group: the whole group is committed once."""
    a, _ = files
    dorkstore.init_db(a)
    group = Group(BLOCKS["database.atomic"])
    group.pause_then(lambda: dorkstore.init_db(a))
    group.finish()
    assert group.error is None
    assert ["/one", "/two"] == denied_paths(a)


def test_a_group_that_fails_after_init_db_is_rolled_back_whole(files: tuple[Path, Path]) -> None:
    """The caller's own exception comes out, and neither database keeps any of the group."""
    a, b = files
    dorkstore.init_db(a)
    group = Group(BLOCKS["database.atomic"], fail=True)
    group.pause_then(lambda: dorkstore.init_db(b))
    group.finish()
    assert isinstance(group.error, LookupError)
    assert ([], []) == (denied_paths(a), denied_paths(b))


def test_no_connection_keeps_the_write_lock_after_the_group(files: tuple[Path, Path]) -> None:
    """Once the group has ended, another process can write to A while the thread lives on."""
    a, b = files
    held = dorkstore.init_db(a)  # callers keep what init_db returns
    group = Group(BLOCKS["database.atomic"])
    try:
        group.pause_then(lambda: dorkstore.init_db(b))
        wrote = stdlib_sqlite(
            a,
            """
            conn.execute("PRAGMA busy_timeout = 500")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO agent_denials (id, path, created_at) "
                         "VALUES ('01J00000000000000000000000', '/child', 'x')")
            conn.execute("COMMIT")
            result = "written"
            """,
        )
    finally:
        group.finish()
    assert "written" == wrote
    assert ["/child", "/one", "/two"] == denied_paths(a)
    assert held.is_closed()


def test_init_db_inside_a_transaction_is_refused(files: tuple[Path, Path], tmp_path: Path) -> None:
    """A thread inside a transaction cannot re-point the proxy: DatabaseError, nothing changes."""
    a, _ = files
    db = dorkstore.init_db(a)
    other = tmp_path / "other.db"
    with database.atomic():
        DenialList().deny("/one")
        with pytest.raises(DatabaseError, match="inside a transaction"):
            dorkstore.init_db(other)
        assert db is database.obj
        DenialList().deny("/two")
    assert not other.exists()
    assert ["/one", "/two"] == denied_paths(a)


def test_close_db_inside_a_transaction_is_refused(files: tuple[Path, Path]) -> None:
    """close_db inside a transaction raises DatabaseError and closes nothing."""
    a, _ = files
    db = dorkstore.init_db(a)
    with database.atomic():
        DenialList().deny("/one")
        with pytest.raises(DatabaseError, match="inside a transaction"):
            dorkstore.close_db()
        assert not db.is_closed()
    assert ["/one"] == denied_paths(a)


def test_close_db_closes_this_threads_connection_to_a_replaced_database(
    files: tuple[Path, Path],
) -> None:
    """A thread that used A before init_db(B) closes its connection to A with close_db()."""
    a, b = files
    kept = dorkstore.init_db(a)
    used, replaced = threading.Event(), threading.Event()
    closed: list[bool] = []

    def worker() -> None:
        DenialList().list()  # connects this thread to A
        used.set()
        assert replaced.wait(WAIT)
        dorkstore.close_db()
        closed.append(kept.is_closed())  # peewee's state is per thread

    thread = threading.Thread(target=worker)
    thread.start()
    assert used.wait(WAIT)
    dorkstore.init_db(b)
    replaced.set()
    thread.join(WAIT)
    assert [True] == closed


def test_a_decorated_function_uses_the_database_current_at_each_call(
    files: tuple[Path, Path],
) -> None:
    """database.atomic() as a decorator picks the database when each call begins."""
    a, b = files

    @database.atomic()
    def deny(path: str) -> None:
        DenialList().deny(path)

    dorkstore.init_db(a)
    deny("/in-a")
    dorkstore.init_db(b)
    deny("/in-b")
    assert (["/in-a"], ["/in-b"]) == (denied_paths(a), denied_paths(b))


def test_transactions_of_the_proxy_end_where_they_began(files: tuple[Path, Path]) -> None:
    """database.transaction() and savepoint() entered on A commit on A after init_db(B)."""
    a, b = files
    dorkstore.init_db(a)

    @contextmanager
    def block() -> Iterator[None]:
        with database.transaction(), database.savepoint():
            yield

    group = Group(block)
    group.pause_then(lambda: dorkstore.init_db(b))
    group.finish()
    assert group.error is None
    assert (["/one", "/two"], []) == (denied_paths(a), denied_paths(b))


def test_the_proxy_before_init_db_says_so() -> None:
    """Entering database.atomic() with no database is the uninitialised-proxy error it was."""
    saved = database.obj
    database.initialize(None)
    try:
        with pytest.raises(AttributeError, match="uninitialized"), database.atomic():
            pass
    finally:
        database.initialize(saved)
