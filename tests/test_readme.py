"""The README's usage example runs and prints what it says it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_usage_example_runs(tmp_path: Path) -> None:
    """The Python block under "Usage" runs on a fresh DORK_HOME and prints its comments."""
    (example,) = re.findall(r"## Usage\n\n```python\n(.*?)```", README.read_text(), re.DOTALL)
    expected = re.findall(r"  # (.*)$", example, re.MULTILINE)[1:]  # the first is a note
    done = subprocess.run(
        [sys.executable, "-c", example],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={"DORK_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"},
    )
    assert (0, "") == (done.returncode, done.stderr)
    assert expected == done.stdout.splitlines()
    assert (tmp_path / "home" / "dork.db").exists()
