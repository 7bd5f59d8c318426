"""init_db flipping between two files while threads run groups and processes write.

Every group (two denials in one transaction) must land whole in exactly one
file or, when it fails on purpose, in neither; no thread sees an error of
dorkstore's making; and processes writing to either file never wait for a
lock that a finished group left behind.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import pytest

import dorkstore
from dorkstore import DenialList, database
from tests.helpers import stdlib_sqlite

pytestmark = pytest.mark.stress

THREADS, GROUPS = 4, 60
WRITER = """
import pathlib, sys
import dorkstore
stop = pathlib.Path(sys.argv[2])
dorkstore.init_db(sys.argv[1])
denials = dorkstore.DenialList()
n = 0
while not stop.exists():
    denials.deny(f"/child/{n}")  # waits up to busy_timeout (5 s) for the write lock
    n += 1
print(n)
"""


class PlannedError(Exception):
    """A group's own failure, raised on purpose."""


def grouper(worker: int, errors: list[BaseException]) -> None:
    """Run GROUPS groups; every fifth fails on purpose; alternate the two ways to open one."""
    denials = DenialList()
    for group in range(GROUPS):
        block = database.atomic("IMMEDIATE") if worker % 2 else dorkstore.write_transaction()
        try:
            with block:
                denials.deny(f"/w{worker}/g{group}/1")
                time.sleep(0.002)
                denials.deny(f"/w{worker}/g{group}/2")
                if group % 5 == 4:
                    raise PlannedError
        except PlannedError:
            pass
        except BaseException as exc:
            errors.append(exc)
    dorkstore.close_db()


def rows(path: Path) -> set[str]:
    """Return the groups' denied paths committed in `path`, read by another process."""
    found: list[str] = stdlib_sqlite(
        path,
        "result = [r[0] for r in conn.execute("
        "\"SELECT path FROM agent_denials WHERE path LIKE '/w%'\")]",
    )
    return set(found)


def test_groups_stay_whole_while_init_db_flips_between_files(tmp_path: Path) -> None:
    """Hundreds of groups across init_db flips: each whole in one file, no errors, no stuck lock."""
    files = [tmp_path / "a.db", tmp_path / "b.db"]
    for path in files:
        dorkstore.init_db(path)
        dorkstore.close_db()
    stop = tmp_path / "stop"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(stop)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in files
    ]
    held: deque[object] = deque(maxlen=2)  # keeps replaced databases alive, as callers do
    held.append(dorkstore.init_db(files[0]))
    errors: list[BaseException] = []
    workers = [threading.Thread(target=grouper, args=(n, errors)) for n in range(THREADS)]
    for worker in workers:
        worker.start()
    flips = 0
    while any(worker.is_alive() for worker in workers):
        held.append(dorkstore.init_db(files[flips % 2]))
        flips += 1
        time.sleep(0.005)
    for worker in workers:
        worker.join()
    stop.touch()
    outcomes = [writer.communicate(timeout=60) for writer in writers]
    assert [0, 0] == [writer.returncode for writer in writers], [err for _, err in outcomes]
    assert [] == errors
    assert flips > 10
    in_a, in_b = rows(files[0]), rows(files[1])
    assert set() == in_a & in_b
    expected = {
        (worker, group) for worker in range(THREADS) for group in range(GROUPS) if group % 5 != 4
    }
    found = {}
    for name, paths in (("a", in_a), ("b", in_b)):
        for path in paths:
            _, worker, group, _ = path.split("/")
            found.setdefault((int(worker[1:]), int(group[1:])), []).append((name, path[-1]))
    assert expected == set(found)
    for group, places in found.items():
        assert 2 == len(places), group
        assert places[0][0] == places[1][0], group  # both halves in the same file
