"""Operators' commands beside a live writer in another process, with exact counts after."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

import dorkstore
import dorkstore.legacy
from dorkstore.records import MAILDIR_STATUSES

pytestmark = pytest.mark.stress

#: Per backend: envelope files to rebuild, and old messages to import. On SQLite the
#: import must take several busy timeouts, so one transaction would starve the server.
SIZES = {"sqlite": (30_000, 300_000), "postgres": (10_000, 30_000)}


@pytest.fixture(params=sorted(SIZES))
def live_target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(backend, target): a new SQLite file, or the session's emptied PostgreSQL database."""
    if request.param == "postgres":
        return "postgres", request.getfixturevalue("pg_url")
    path = str(tmp_path / "dork.db")
    dorkstore.init_db(path)
    return "sqlite", path


def envelope(message_id: str) -> dict[str, Any]:
    return {
        "id": message_id,
        "subject": "relay.live",
        "from": "agent-live",
        "budget": {"ttl": 0},
        "createdAt": "2026-02-25T14:03:07.123Z",
        "payload": {},
    }


def deliver(root: Path, endpoint: str, folder: str, message_id: str) -> Path:
    """Write an envelope as a relay does: into tmp/, then renamed into place."""
    final = root / endpoint / folder / f"{message_id}.json"
    scratch = root / endpoint / "tmp" / f"{message_id}.json"
    scratch.write_text(json.dumps(envelope(message_id)))
    scratch.rename(final)
    return final


def live_relay(path: str, root: str, started: Any, stop: Any, written: Any) -> None:
    """Write envelopes and index them (file first, then row), moving every third to cur/."""
    dorkstore.init_db(path)
    relay, mailboxes = dorkstore.RelayIndex(), Path(root)
    number = 0
    started.set()
    while not stop.is_set():
        message_id = f"LIVE{number:08d}"
        new = deliver(mailboxes, "live", "new", message_id)
        relay.insert_message(message_id, "relay.live", "live")
        if number % 3 == 0:
            new.rename(mailboxes / "live" / "cur" / new.name)
            relay.update_status(message_id, "delivered")
        number += 1
        written.value = number


def files_on_disk(root: Path) -> dict[str, str]:
    return {
        path.stem: MAILDIR_STATUSES[path.parent.name]
        for path in root.glob("*/*/*.json")
        if path.parent.name in MAILDIR_STATUSES
    }


def test_rebuild_beside_a_live_relay_keeps_every_message(
    tmp_path: Path, live_target: tuple[str, str]
) -> None:
    """Every envelope on disk is in the index after a rebuild that a relay wrote through."""
    backend, target = live_target
    files = SIZES[backend][0]
    root = tmp_path / "mailboxes"
    for endpoint in ("old", "live"):
        for folder in ("tmp", "new", "cur", "failed"):
            (root / endpoint / folder).mkdir(parents=True)
    for number in range(files):
        deliver(root, "old", "new" if number % 2 else "cur", f"OLD{number:08d}")
    context = multiprocessing.get_context("spawn")
    started, stop, written = context.Event(), context.Event(), context.Value("q", 0)
    writer = context.Process(target=live_relay, args=(target, str(root), started, stop, written))
    writer.start()
    try:
        assert started.wait(60)
        before = written.value
        dorkstore.RelayIndex().rebuild(root)
        during = written.value - before
    finally:
        stop.set()
        writer.join(60)
    assert 0 == writer.exitcode
    assert during > 0, "the relay wrote nothing while the index was rebuilt"
    rows = {
        message.id: message.status
        for endpoint in ("old", "live")
        for message in dorkstore.RelayIndex().get_by_endpoint(endpoint)
    }
    on_disk = files_on_disk(root)
    assert files + written.value == len(on_disk)
    assert on_disk == rows
    dorkstore.close_db()


def old_relay_database(path: Path, count: int) -> None:
    """An old relay/index.db with `count` messages, written with APSW (this process's SQLite)."""
    import apsw

    path.parent.mkdir(parents=True)
    connection = apsw.Connection(str(path))
    connection.execute(
        "CREATE TABLE messages (id TEXT PRIMARY KEY, subject TEXT, sender TEXT, "
        "endpoint_hash TEXT, status TEXT, created_at TEXT, ttl INTEGER)"
    )
    with connection:
        connection.executemany(
            "INSERT INTO messages VALUES (?, 'relay.old', 'agent', 'ep-old', 'new', "
            "'2026-01-01T00:00:00Z', NULL)",
            ((f"OLD{number:08d}",) for number in range(count)),
        )
    connection.close()


def live_server(path: str, started: Any, stop: Any, written: Any, errors: Any) -> None:
    """Index a message and deny a path per step, as a server does, until told to stop."""
    dorkstore.init_db(path)
    relay, denials = dorkstore.RelayIndex(), dorkstore.DenialList()
    number = 0
    started.set()
    while not stop.is_set():
        try:
            relay.insert_message(f"NEW{number:08d}", "relay.live", "ep-live")
            denials.deny(f"/live/{number}")
        except dorkstore.DatabaseBusyError:
            errors.value += 1
            continue
        number += 1
        written.value = number


def test_import_legacy_beside_a_live_server_blocks_no_writer(
    tmp_path: Path, live_target: tuple[str, str]
) -> None:
    """A server keeps writing through an import: nothing busy, every row of both sides kept."""
    backend, target = live_target
    old_messages = SIZES[backend][1]
    home = tmp_path / "old"
    old_relay_database(home / "relay" / "index.db", old_messages)
    context = multiprocessing.get_context("spawn")
    started, stop = context.Event(), context.Event()
    written, errors = context.Value("q", 0), context.Value("q", 0)
    server = context.Process(target=live_server, args=(target, started, stop, written, errors))
    server.start()
    try:
        assert started.wait(60)
        before = written.value
        report = dorkstore.legacy.import_legacy(home)
        during = written.value - before
    finally:
        stop.set()
        server.join(60)
    assert 0 == server.exitcode
    assert during > 0, "the server wrote nothing while the import ran"
    assert 0 == errors.value
    assert old_messages == report.imported["relay_index"]
    relay = dorkstore.RelayIndex()
    assert old_messages == relay.count_pending_by_endpoint("ep-old")
    assert written.value == relay.count_pending_by_endpoint("ep-live")
    assert written.value == len(dorkstore.DenialList().list())
    dorkstore.close_db()
