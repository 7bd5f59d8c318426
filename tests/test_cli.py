"""The command line so far: migrate and check-migrations, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dorkstore import migrate
from dorkstore.cli import main

SHIPPED = migrate.available_migrations()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_migrate_lists_what_it_applied(capsys: pytest.CaptureFixture[str], db_path: Path) -> None:
    """migrate prints each applied migration, then nothing to do the second time."""
    assert (0, "".join(f"applied {name}\n" for name in SHIPPED), "") == run(
        capsys, "--db", str(db_path), "migrate"
    )
    assert (0, "nothing to migrate\n", "") == run(capsys, "--db", str(db_path), "migrate")


def test_check_migrations_passes_on_the_shipped_tree(capsys: pytest.CaptureFixture[str]) -> None:
    """check-migrations exits 0 when models and migrations agree."""
    assert (0, "migrations match the models\n", "") == run(capsys, "check-migrations")


def test_check_migrations_prints_the_missing_migration(
    capsys: pytest.CaptureFixture[str], migrations_dir: Path
) -> None:
    """Drift is a finding: printed on stdout with exit status 1."""
    initial = migrations_dir / "001_initial.py"
    initial.write_text(initial.read_text().replace("            without_rowid = True\n", ""))
    status, out, err = run(capsys, "check-migrations", "--directory", str(migrations_dir))
    assert (1, "") == (status, err)
    assert "relay_index: + WITHOUT ROWID" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--db", "{tmp}", "migrate"], "is a directory"),
        (["--db", "{tmp}/text.db", "migrate"], "not a SQLite database"),
        (["--db", "{tmp}/missing/dork.db", "migrate"], "does not exist"),
        (["no-such-command"], "No such command"),
        (["check-migrations", "--directory", "{tmp}/nowhere"], "does not exist"),
    ],
)
def test_errors_are_one_line_on_stderr(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    """Every error is exactly one line on stderr and a non-zero exit, never a traceback."""
    (tmp_path / "text.db").write_text("not a database\n")
    status, out, err = run(capsys, *(arg.format(tmp=tmp_path) for arg in args))
    assert status != 0
    assert 1 == len(err.splitlines())
    assert message in err
    assert "Traceback" not in err + out


def test_console_script_runs_as_a_subprocess(db_path: Path) -> None:
    """The installed `dorkstore` command migrates a database."""
    script = Path(sys.executable).with_name("dorkstore")
    done = subprocess.run(
        [str(script), "--db", str(db_path), "migrate"], capture_output=True, text=True, check=False
    )
    assert (0, "") == (done.returncode, done.stderr)
    assert f"applied {SHIPPED[0]}" in done.stdout
