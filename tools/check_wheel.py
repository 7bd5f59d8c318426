"""Build the wheel, install it alone in a fresh venv outside the tree, and migrate a new database.

Usage: python tools/check_wheel.py WORKDIR. Exits non-zero, saying why, on any failure.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs inside the fresh venv, from WORKDIR, with -I (no checkout on sys.path).
PROBE = """
import sys
from pathlib import Path

import dorkstore
from dorkstore import migrate

package = Path(dorkstore.__file__).parent
assert "site-packages" in package.parts, package
assert migrate.default_directory().parent == package, migrate.default_directory()
db = dorkstore.init_db(Path(sys.argv[1]))
tables = set(db.get_tables())
expected = {
    "agent_denials", "agents", "migratehistory", "pulse_runs", "pulse_schedules",
    "rate_limit_buckets", "relay_index", "relay_traces",
}
assert tables == expected, tables
applied = migrate.applied_migrations(db)
assert applied == migrate.available_migrations() and applied, applied
print("wheel ok:", ", ".join(applied))
"""


def run(*command: str | Path, cwd: Path | None = None) -> None:
    """Run a command, echoing it; raise on a non-zero exit."""
    print("+", " ".join(map(str, command)), flush=True)
    subprocess.run([str(part) for part in command], check=True, cwd=cwd)


def main(workdir: Path) -> None:
    """Build, install and probe the wheel under `workdir`."""
    shutil.rmtree(workdir / "check-wheel", ignore_errors=True)
    work = workdir / "check-wheel"
    work.mkdir(parents=True)
    run(sys.executable, "-m", "build", "--wheel", "--outdir", work / "dist", ROOT)
    (wheel,) = (work / "dist").glob("dorkstore-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for required in ("dorkstore/py.typed", "dorkstore/migrations/001_initial.py"):
        if required not in names:
            sys.exit(f"{wheel.name} lacks {required}")

    venv.create(work / "venv", with_pip=True)
    python = work / "venv" / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", wheel)
    run(python, "-I", "-c", PROBE, work / "new.db", cwd=work)
    run(work / "venv" / "bin" / "dorkstore", "check-migrations", cwd=work)


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
