"""The README's guarantees on PostgreSQL, against a real server (SPEC section 10).

Each test here needs ``DORKSTORE_TEST_PG`` (``tools/pg_cluster.py`` sets it) and
is skipped without it; CI's postgres environment sets ``DORKSTORE_REQUIRE_PG``,
so a missing server fails there instead. Processes are spawned and talk to the
server over TCP, as processes on other machines would. Larger and slower
scenarios are in ``tests/stress/test_postgres_stress.py``.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playhouse.test_utils import count_queries

import dorkstore
from dorkstore import BudgetCheck, DatabaseBusyError, DatabaseError, admin, backends, sqlite_files
from dorkstore.backends.postgres import _lock_key
from dorkstore.migrate import available_migrations
from dorkstore.timestamps import format_timestamp
from tests.helpers import TABLES, run_in_processes
from tests.pg_workers import (
    backend_pid,
    connect,
    consume,
    hold_migration_lock,
    is_driver_error,
    new_database,
    open_new,
    sibling_url,
    terminate,
    with_password,
    write_then_hang,
)

PG_URL = os.environ.get("DORKSTORE_TEST_PG")
CONTEXT = multiprocessing.get_context("spawn")
#: A password for URLs; trust authentication ignores it. URL-quoted: the server gets S3cret@pw.
PASSWORD = "S3cret%40pw"  # noqa: S105 - a test value, never a real secret
START = datetime(2026, 2, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def new_pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database for this test alone (dropped after)."""
    if PG_URL is None:
        pytest.skip("DORKSTORE_TEST_PG is not set: no PostgreSQL server to test against")
    name = re.sub(r"\W", "_", f"dorkstore_{os.getpid()}_{request.node.name}").lower()[:63]
    with new_database(PG_URL, name) as url:
        yield url


def assert_dorkstore_error(error: object, kind: type[dorkstore.DorkstoreError]) -> None:
    """What the caller got is the dorkstore error asked for, never the driver's own."""
    assert isinstance(error, kind), repr(error)
    assert not is_driver_error(error), repr(error)


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    """Return what `call` returned (or the exception it raised) and how many seconds it took."""
    start = time.monotonic()
    try:
        outcome = call()
    except Exception as exc:
        outcome = exc
    return outcome, time.monotonic() - start


def reopen_with_busy_timeout(monkeypatch: pytest.MonkeyPatch, url: str, milliseconds: int) -> None:
    """Open `url` again with a shorter busy timeout (the backend reads it when it opens)."""
    monkeypatch.setattr(sqlite_files, "BUSY_TIMEOUT_MS", milliseconds)
    dorkstore.init_db(url)


@contextmanager
def another_session(url: str, sql: str, params: tuple[Any, ...] = ()) -> Iterator[None]:
    """Run `sql` in a transaction of another session, and keep it open (holding its locks)."""
    with connect(url) as session:  # not autocommit: the statement begins a transaction
        session.execute(sql, params)
        try:
            yield
        finally:
            session.rollback()


def row_counts(url: str) -> dict[str, int]:
    """Return the rows of each dorkstore table, counted by another session."""
    with connect(url, autocommit=True) as session:
        return {
            table: session.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            for table in sorted(TABLES)
        }


def message(id: str, **fields: Any) -> dorkstore.IndexedMessage:
    values: dict[str, Any] = {
        "id": id,
        "subject": "relay.pg",
        "endpoint_hash": "ep",
        "sender": None,
        "status": "pending",
        "expires_at": None,
        "payload": None,
        "metadata": None,
        "created_at": "2026-02-25T14:03:07.123Z",
    }
    return dorkstore.IndexedMessage(**(values | fields))


# --- 1. try_consume: exact across processes, and one agent never waits for another -------


def test_try_consume_is_exact_across_processes(pg_url: str) -> None:
    """4 processes x 500 calls against a budget of 1,000: exactly 1,000 are allowed."""
    outcomes = run_in_processes(consume, [(pg_url, "agent-x", 500, 1000)] * 4)
    assert [[]] * 4 == [errors for _, errors in outcomes]
    assert 1000 == sum(allowed for allowed, _ in outcomes)
    assert BudgetCheck(False, 0, 1000) == dorkstore.BudgetMapper().check_budget("agent-x", 1000)


def hold_agent_lock(agent: str, holding: threading.Event, release: threading.Event) -> None:
    """In a thread: consume one call of `agent` inside a group, and keep the group open."""
    with dorkstore.write_transaction(agent):
        dorkstore.BudgetMapper().try_consume(agent, 10)
        holding.set()
        release.wait(30)
    dorkstore.close_db()


def consume_beside_a_held_agent(pg_url: str) -> tuple[Any, float, Any]:
    """While agent-a's group is open in another thread: agent-b's and agent-a's try_consume."""
    budgets = dorkstore.BudgetMapper()
    holding, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold_agent_lock, args=("agent-a", holding, release))
    holder.start()
    try:
        assert holding.wait(10)
        b, b_seconds = timed(lambda: budgets.try_consume("agent-b", 10))
        a, _ = timed(lambda: budgets.try_consume("agent-a", 10))
    finally:
        release.set()
        holder.join(30)
    return b, b_seconds, a


def test_a_held_agent_does_not_hold_up_another(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Agent B's try_consume goes straight through while agent A's lock is held; A's waits."""
    reopen_with_busy_timeout(monkeypatch, pg_url, 500)
    b, b_seconds, a = consume_beside_a_held_agent(pg_url)
    assert BudgetCheck(True, 9, 1) == b
    assert b_seconds < 0.25, b_seconds  # half the busy timeout: it never waited for A
    assert_dorkstore_error(a, DatabaseBusyError)
    assert 1 == dorkstore.BudgetMapper().check_budget("agent-a", 10).used


def test_a_held_agent_does_not_hold_up_another_when_old_buckets_are_pruned(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also when A's transaction pruned other agents' expired buckets, B goes straight through."""
    hours_ago = datetime.now(UTC) - timedelta(hours=3)
    dorkstore.BudgetMapper(clock=lambda: hours_ago).record_call("agent-c")
    reopen_with_busy_timeout(monkeypatch, pg_url, 500)
    b, b_seconds, _ = consume_beside_a_held_agent(pg_url)
    assert BudgetCheck(True, 9, 1) == b
    assert b_seconds < 0.25, b_seconds


# --- 3. migrations: once, whoever opens the new database at the same time -----------------


def test_processes_opening_one_new_database_apply_each_migration_once(new_pg_url: str) -> None:
    """4 processes open a new database at once: one applies every migration, all succeed."""
    outcomes = run_in_processes(open_new, [(new_pg_url,)] * 4)
    assert ["applied"] * 4 == [kind for kind, _ in outcomes], outcomes
    everything = available_migrations()
    assert sorted([everything, [], [], []]) == sorted(applied for _, applied in outcomes)
    with connect(new_pg_url) as session:
        history = [
            name for (name,) in session.execute("SELECT name FROM migratehistory ORDER BY id")
        ]
    assert everything == history


def test_a_migration_lock_held_past_the_deadline_is_a_migration_error(
    new_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """init_db gives up with MigrationError after LOCK_TIMEOUT_S; migrates once the holder dies."""
    holding = CONTEXT.Event()
    holder = CONTEXT.Process(target=hold_migration_lock, args=(new_pg_url, 60, holding))
    holder.start()
    try:
        assert holding.wait(60)
        monkeypatch.setattr("dorkstore.migrate.runner.LOCK_TIMEOUT_S", 0.5)
        error, seconds = timed(lambda: dorkstore.init_db(new_pg_url))
    finally:
        holder.kill()
        holder.join(30)
    assert_dorkstore_error(error, dorkstore.MigrationError)
    assert "migration lock" in str(error)
    assert 0.5 <= seconds < 3, seconds
    # Nothing was migrated meanwhile, and the killed holder's session lock went with it.
    assert available_migrations() == dorkstore.migrate_db(new_pg_url)


# --- 4. query plans on realistic data -----------------------------------------------------

MESSAGES = SPANS = 20_000


@pytest.fixture(scope="module")
def realistic_url() -> Iterator[str]:
    """A database with 20,000 messages and spans, vacuumed and analysed as autovacuum would.

    A quarter of the messages share one subject, endpoint and sender ("hot"); the
    rest spread over 500 subjects, 1,000 endpoints and 300 senders. Statuses are
    80% delivered, 10% pending, 10% failed.
    """
    if PG_URL is None:
        pytest.skip("DORKSTORE_TEST_PG is not set: no PostgreSQL server to test against")
    rng = random.Random(20260225)
    with new_database(PG_URL, f"dorkstore_{os.getpid()}_plans") as url:
        dorkstore.init_db(url)
        dorkstore.RelayIndex().insert_many(
            message(
                f"01KJ{n:022d}",
                subject="relay.hot" if n % 4 == 0 else f"relay.s{rng.randrange(500)}",
                endpoint_hash="ep-hot" if n % 4 == 0 else f"ep-{rng.randrange(1000)}",
                sender="agent-hot" if n % 4 == 0 else f"agent-{rng.randrange(300)}",
                status=rng.choices(["pending", "delivered", "failed"], [1, 8, 1])[0],
                created_at=format_timestamp(START + timedelta(seconds=n)),
            )
            for n in range(MESSAGES)
        )
        spans = []
        for n in range(SPANS):
            sent = START + timedelta(seconds=n)
            latency = rng.randrange(1, 5000) if n % 4 else None
            delivered = None if latency is None else sent + timedelta(milliseconds=latency)
            spans.append(
                (
                    f"01KJ{n:022d}", f"M{n}", f"T{n // 5}", f"relay.s{rng.randrange(500)}",
                    rng.choice(["sent", "delivered", "failed", "timeout"]), format_timestamp(sent),
                    delivered and format_timestamp(delivered), latency,
                )
            )  # fmt: skip
        with connect(url, autocommit=True) as session:
            # The test cluster commits asynchronously; a commit that waits for the log
            # lets VACUUM see every row as committed, and so mark its pages all-visible.
            session.execute("SET synchronous_commit = on")
            session.cursor().executemany(
                "INSERT INTO relay_traces (id, message_id, trace_id, subject, status, sent_at, "
                "delivered_at, latency_ms) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                spans,
            )
            session.execute("VACUUM ANALYZE relay_index")
            session.execute("VACUUM ANALYZE relay_traces")
        dorkstore.close_db()
        yield url


def plans_of(call: Callable[[], object]) -> list[str]:
    """Run `call` and return PostgreSQL's plan of each query it sent (transaction control aside)."""
    with count_queries() as counter:
        call()
    db = backends.current_database()
    plans = []
    for record in counter.get_queries():
        sql, params = record.msg
        if not re.match(r"(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", sql):
            plans.append("\n".join(backends.current().query_plan(db, sql, tuple(params))))
    return plans


CURSOR = f"01KJ{MESSAGES // 2:022d}"
RARE = [
    {"subject": "relay.s1"},
    {"sender": "agent-1"},
    {"endpoint_hash": "ep-1"},
    {"endpoint_hash": "ep-1", "status": "pending"},
    {"status": "failed"},
    {"subject": "relay.s1", "cursor": CURSOR},
]
COMMON = [
    {"subject": "relay.hot"},
    {"sender": "agent-hot"},
    {"endpoint_hash": "ep-hot"},
    {"endpoint_hash": "ep-hot", "status": "delivered"},
    {"status": "delivered"},
    {"status": "pending"},
    {"endpoint_hash": "ep-hot", "status": "pending", "cursor": CURSOR},
]


@pytest.mark.parametrize("filters", RARE + COMMON, ids=str)
def test_query_messages_reads_relay_index_through_an_index(
    realistic_url: str, filters: dict[str, str]
) -> None:
    """Each filter is served by an index; relay_index is never read whole."""
    dorkstore.init_db(realistic_url)
    (plan,) = plans_of(lambda: dorkstore.RelayIndex().query_messages(**filters))
    assert "Seq Scan" not in plan, plan
    assert re.search(r"Index (Only )?Scan", plan), plan


@pytest.mark.parametrize("filters", COMMON, ids=str)
def test_query_messages_of_a_common_value_reads_an_index_in_page_order(
    realistic_url: str, filters: dict[str, str]
) -> None:
    """For a value thousands of rows share, the index yields the id order: no Sort.

    (For a rare value PostgreSQL may fetch its few rows by bitmap and sort them,
    which its planner rightly finds cheaper.)
    """
    dorkstore.init_db(realistic_url)
    (plan,) = plans_of(lambda: dorkstore.RelayIndex().query_messages(**filters))
    assert re.search(
        r"^\s*->  Index (Only )?Scan (Backward )?using \w+ on relay_index", plan, re.M
    ), plan
    assert not re.search(r"\bSort\b", plan), plan


@pytest.mark.parametrize(
    "count",
    [
        lambda relay: relay.count_sender_in_window("agent-1", START),
        lambda relay: relay.count_sender_in_window("agent-hot", START + timedelta(hours=5)),
        lambda relay: relay.count_pending_by_endpoint("ep-1"),
        lambda relay: relay.count_pending_by_endpoint("ep-hot"),
    ],
    ids=["sender", "hot sender", "endpoint", "hot endpoint"],
)
def test_counts_read_relay_index_through_an_index(
    realistic_url: str, count: Callable[[dorkstore.RelayIndex], int]
) -> None:
    """The sender and backpressure counts are served by an index too."""
    dorkstore.init_db(realistic_url)
    (plan,) = plans_of(lambda: count(dorkstore.RelayIndex()))
    assert "Seq Scan" not in plan, plan
    assert "Index" in plan, plan


def test_trace_metrics_read_indexes_alone(realistic_url: str) -> None:
    """Every statement of TraceStore.get_metrics reads an index, none relay_traces itself."""
    dorkstore.init_db(realistic_url)
    plans = plans_of(dorkstore.TraceStore().get_metrics)
    # The counts, the capped skip-scan of subjects, the full distinct count that 500
    # subjects in 20,000 spans call for, and the p95 read from the top of its index.
    assert 4 == len(plans), plans
    for plan in plans:
        assert "Seq Scan" not in plan, plan
        assert "Index Only Scan" in plan, plan


def test_relay_metrics_read_relay_index_once_per_statement(realistic_url: str) -> None:
    """RelayIndex.get_metrics counts in the database, each statement in one pass over the rows.

    These count every row, so PostgreSQL's planner reads the (narrow) table in
    order rather than an index: measured, the two take the same time here.
    """
    dorkstore.init_db(realistic_url)
    plans = plans_of(dorkstore.RelayIndex().get_metrics)
    assert [1, 1, 1] == [
        len(re.findall(r"Scan (using \w+ )?on relay_index", plan)) for plan in plans
    ], plans
    assert MESSAGES == dorkstore.RelayIndex().get_metrics().total_messages


# --- 5. a lock held too long: DatabaseBusyError, nothing written --------------------------


def test_a_held_agent_lock_is_busy_after_the_five_second_busy_timeout(pg_url: str) -> None:
    """Another session holding agent-1's lock: try_consume raises DatabaseBusyError after 5 s."""
    assert 5000 == sqlite_files.BUSY_TIMEOUT_MS
    budgets = dorkstore.BudgetMapper()
    with another_session(pg_url, "SELECT pg_advisory_xact_lock(%s)", (_lock_key("agent-1"),)):
        error, seconds = timed(lambda: budgets.try_consume("agent-1", 10))
    assert_dorkstore_error(error, DatabaseBusyError)
    assert 4.95 <= seconds < 6, seconds
    assert BudgetCheck(True, 10, 0) == budgets.check_budget("agent-1", 10)


def test_a_row_lock_held_too_long_is_busy_and_changes_nothing(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message row locked by another session: update_status is busy, the status unchanged."""
    relay = dorkstore.RelayIndex()
    relay.insert_message("M1", "relay.pg", "ep")
    reopen_with_busy_timeout(monkeypatch, pg_url, 300)
    with another_session(pg_url, "SELECT id FROM relay_index WHERE id = 'M1' FOR UPDATE"):
        error, seconds = timed(lambda: relay.update_status("M1", "delivered"))
    assert_dorkstore_error(error, DatabaseBusyError)
    assert 0.3 <= seconds < 2, seconds
    assert message("M1", created_at=relay.get_message("M1").created_at) == relay.get_message("M1")  # type: ignore[union-attr]


def test_the_database_lock_held_too_long_is_busy_for_bulk_writes_and_groups(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """insert_many and a write_transaction() group raise DatabaseBusyError and write nothing."""
    reopen_with_busy_timeout(monkeypatch, pg_url, 300)
    relay = dorkstore.RelayIndex()

    def group() -> None:
        with dorkstore.write_transaction():
            relay.insert_message("G1", "relay.pg", "ep")

    with another_session(pg_url, "SELECT pg_advisory_xact_lock(%s)", (_lock_key("database"),)):
        bulk, _ = timed(lambda: relay.insert_many([message("B1"), message("B2")]))
        grouped, _ = timed(group)
    assert_dorkstore_error(bulk, DatabaseBusyError)
    assert_dorkstore_error(grouped, DatabaseBusyError)
    assert 0 == relay.get_metrics().total_messages
    assert 2 == relay.insert_many([message("B1"), message("B2")])  # the next call works


# --- 6. kill -9 inside a transaction --------------------------------------------------------


def test_a_process_killed_inside_a_group_leaves_nothing_and_no_lock(pg_url: str) -> None:
    """SIGKILL after writes in a group: none of them stays, and its locks are free at once."""
    ready = CONTEXT.Event()
    child = CONTEXT.Process(target=write_then_hang, args=(pg_url, ready))
    child.start()
    try:
        assert ready.wait(60)
    finally:
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join(30)
    assert -signal.SIGKILL == child.exitcode
    # The child held the whole-database lock and agent-killed's: both are needed here.
    inserted, insert_seconds = timed(lambda: dorkstore.RelayIndex().insert_many([message("AFTER")]))
    consumed, consume_seconds = timed(
        lambda: dorkstore.BudgetMapper().try_consume("agent-killed", 10)
    )
    assert 1 == inserted
    assert BudgetCheck(True, 9, 1) == consumed
    assert insert_seconds + consume_seconds < 2
    assert dict.fromkeys(sorted(TABLES), 0) | {"relay_index": 1, "rate_limit_buckets": 1} == (
        row_counts(pg_url)
    )


# --- 7. a connection killed under a call ----------------------------------------------------


def test_a_terminated_connection_fails_one_call_and_the_next_reconnects(pg_url: str) -> None:
    """pg_terminate_backend of this session: that call raises DatabaseError, the next works."""
    relay = dorkstore.RelayIndex()
    relay.insert_message("BEFORE", "relay.pg", "ep")
    killed = backend_pid()
    terminate(pg_url, killed)
    error, _ = timed(lambda: relay.insert_message("LOST", "relay.pg", "ep"))
    assert_dorkstore_error(error, DatabaseError)
    assert "connection to the database was lost" in str(error)
    relay.insert_message("AFTER", "relay.pg", "ep")
    assert killed != backend_pid()
    assert ["AFTER", "BEFORE"] == sorted(m.id for m in relay.get_by_endpoint("ep"))


@pytest.mark.parametrize("grouping", ["write_transaction", "database.atomic"])
def test_a_connection_lost_inside_a_group_fails_the_group_alone(pg_url: str, grouping: str) -> None:
    """Killed mid-group: the group raises DatabaseError and leaves nothing; the next call works."""
    relay = dorkstore.RelayIndex()

    def group() -> None:
        begin = dorkstore.database.atomic
        if grouping == "write_transaction":
            begin = dorkstore.write_transaction
        with begin():
            relay.insert_message("G1", "relay.pg", "ep")
            terminate(pg_url, backend_pid())
            relay.insert_message("G2", "relay.pg", "ep")

    error, _ = timed(group)
    assert_dorkstore_error(error, DatabaseError)
    assert "connection to the database was lost" in str(error)
    relay.insert_message("AFTER", "relay.pg", "ep")
    assert ["AFTER"] == [m.id for m in relay.get_by_endpoint("ep")]


# --- 8. one connection per thread; fork ---------------------------------------------------


def test_each_thread_has_a_connection_of_its_own(pg_url: str) -> None:
    """Two threads, both connected at once, and the main thread: three server processes."""
    pids: dict[str, int] = {}
    together = threading.Barrier(2)

    def connect(name: str) -> None:
        pids[name] = backend_pid()
        together.wait(10)  # both connections open at the same moment
        dorkstore.close_db()

    main = backend_pid()
    threads = [threading.Thread(target=connect, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert 3 == len({main, pids["a"], pids["b"]})
    assert main == backend_pid()


def test_a_forked_child_connects_on_its_own_and_spares_the_parents_connection(pg_url: str) -> None:
    """The child gets its own session, even after init_db again; the parent's one lives on."""
    denials = dorkstore.DenialList()
    denials.deny("/before-fork")
    parent = backend_pid()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: we use none here
        pid = os.fork()
    if pid == 0:  # the child
        status = 1
        try:
            if backend_pid() != parent:
                denials.deny("/from-child")
                dorkstore.init_db(pg_url)  # releases the database it inherited
                denials.deny("/child-reopened")
                dorkstore.close_db()
                status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert 0 == os.waitstatus_to_exitcode(status)
    assert parent == backend_pid()
    denials.deny("/parent-after-fork")
    assert ["/before-fork", "/child-reopened", "/from-child", "/parent-after-fork"] == sorted(
        denial.path for denial in denials.list()
    )


# --- 9. the password is never shown ---------------------------------------------------------


def test_a_password_in_the_url_is_never_shown(pg_url: str) -> None:
    """Not in status()["path"], nor anywhere in the error chain for a missing database."""
    dorkstore.init_db(with_password(pg_url, PASSWORD))
    status = admin.status()
    assert pg_url == status["path"]
    assert "S3cret" not in repr(status)
    missing = with_password(sibling_url(pg_url, "dorkstore_no_such_database"), PASSWORD)
    error, _ = timed(lambda: dorkstore.init_db(missing))
    assert_dorkstore_error(error, DatabaseError)
    shown = "".join(traceback.format_exception(error))
    assert 'database "dorkstore_no_such_database" does not exist' in shown
    assert "S3cret" not in shown


def run_cli(*arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m dorkstore`` with `arguments`; DORK_DATABASE_URL only if given."""
    env = {k: v for k, v in os.environ.items() if k != "DORK_DATABASE_URL"} | environment
    return subprocess.run(
        [sys.executable, "-m", "dorkstore", *arguments],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


def test_the_command_line_never_shows_the_password(pg_url: str) -> None:
    """`dorkstore --db URL migrate`, working or failing, prints no password."""
    worked = run_cli("--db", with_password(pg_url, PASSWORD), "migrate")
    missing = sibling_url(pg_url, "dorkstore_no_such_database")
    failed = run_cli("--db", with_password(missing, PASSWORD), "migrate")
    assert (0, "nothing to migrate\n") == (worked.returncode, worked.stdout)
    assert 3 == failed.returncode
    assert 'database "dorkstore_no_such_database" does not exist' in failed.stderr
    assert "S3cret" not in worked.stdout + worked.stderr + failed.stdout + failed.stderr


@pytest.mark.parametrize("given_by", ["--db", "DORK_DATABASE_URL"])
def test_status_of_a_url_shows_it_without_the_password(
    pg_url: str, given_by: str, tmp_path: Any
) -> None:
    """`dorkstore status` of a PostgreSQL URL works and prints the URL without its password."""
    url = with_password(pg_url, PASSWORD)
    if given_by == "--db":
        done = run_cli("--db", url, "status", DORK_HOME=str(tmp_path))
    else:
        done = run_cli("status", DORK_HOME=str(tmp_path), DORK_DATABASE_URL=url)
    assert "S3cret" not in done.stdout + done.stderr
    assert (0, "") == (done.returncode, done.stderr)
    assert pg_url in done.stdout
