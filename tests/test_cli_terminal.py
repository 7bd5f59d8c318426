"""The command line on a terminal: progress bars for the long commands."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.old_layout import build

pytestmark = pytest.mark.slow


def on_a_terminal(*args: str) -> str:
    """Run `dorkstore ARGS` with a pseudo-terminal as stdout; return what it showed."""
    leader, follower = pty.openpty()
    done = subprocess.run(
        [sys.executable, "-m", "dorkstore", *args],
        stdout=follower, stderr=subprocess.PIPE, text=True, check=False, timeout=120,
    )  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's other end is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert 0 == done.returncode, done.stderr
    return b"".join(chunks).decode()


def test_import_legacy_shows_a_progress_bar(tmp_path: Path) -> None:
    """import-legacy on a terminal draws an 'importing' bar, then prints its report."""
    home = build(tmp_path / "old")
    shown = on_a_terminal("--db", str(tmp_path / "dork.db"), "import-legacy", "--from", str(home))
    assert "importing" in shown
    assert "pulse_schedules: imported 3, already present 0" in shown


def test_rebuild_index_shows_a_progress_bar(tmp_path: Path) -> None:
    """rebuild-index on a terminal draws an 'indexing' bar."""
    (tmp_path / "mail" / "ep" / "new").mkdir(parents=True)
    shown = on_a_terminal(
        "--db", str(tmp_path / "dork.db"), "rebuild-index", str(tmp_path / "mail")
    )
    assert "indexing" in shown
    assert "indexed 0 messages" in shown
