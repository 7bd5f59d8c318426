"""Build the sdist and wheels, install each wheel alone in a fresh venv, migrate a new database.

`python -m build` makes what a release uploads: the sdist, and a wheel built from
that sdist. A second wheel is built straight from the tree, as `pip install .` does.
Each wheel is installed alone in its own venv outside the tree and probed there.

Usage: python tools/check_wheel.py WORKDIR. Exits non-zero, saying why, on any failure.
"""

from __future__ import annotations

import ast
import email
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import trove_classifiers

ROOT = Path(__file__).resolve().parent.parent

# Runs inside each fresh venv, with -I (no checkout on sys.path): argv is the new
# database's path and the version the tree declares.
PROBE = """
import sys
from importlib.metadata import version
from pathlib import Path

import dorkstore
from dorkstore import migrate

package = Path(dorkstore.__file__).parent
assert "site-packages" in package.parts, package
assert dorkstore.__version__ == version("dorkstore") == sys.argv[2], dorkstore.__version__
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


def run(*command: str | Path, cwd: Path | None = None) -> str:
    """Run a command, echoing it and its output; exit saying which failed."""
    print("+", " ".join(map(str, command)), flush=True)
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    print(result.stdout, end="", flush=True)
    if result.returncode:
        sys.exit(f"exit status {result.returncode}: {' '.join(map(str, command))}")
    return result.stdout


def tree_version() -> str:
    """Return `__version__` as the tree's dorkstore/__init__.py assigns it."""
    module = ast.parse((ROOT / "dorkstore" / "__init__.py").read_text())
    for node in module.body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__version__":
            return str(ast.literal_eval(node.value))
    sys.exit("dorkstore/__init__.py assigns no literal __version__")


def only(directory: Path, pattern: str) -> Path:
    """Return the one file in `directory` matching `pattern`; exit if not exactly one."""
    found = sorted(directory.glob(pattern))
    if len(found) != 1:
        names = sorted(path.name for path in directory.iterdir())
        sys.exit(f"expected one {pattern} in {directory}, found: {', '.join(names) or 'nothing'}")
    return found[0]


def require(archive: Path, names: set[str], required: set[str]) -> None:
    """Exit naming what of `required` the archive lacks."""
    if missing := sorted(required - names):
        sys.exit(f"{archive.name} lacks {', '.join(missing)}")


def migration_files() -> list[str]:
    """Return the names of the tree's migrations/*.py, as the package ships them."""
    return sorted(path.name for path in (ROOT / "migrations").glob("*.py"))


def check_sdist(sdist: Path, version: str) -> None:
    """Exit unless the sdist holds the docs, licence, package data, migrations and tests."""
    top = f"dorkstore-{version}/"
    with tarfile.open(sdist) as archive:
        names = {name.removeprefix(top) for name in archive.getnames()}
        pkg_info = email.message_from_bytes(archive.extractfile(top + "PKG-INFO").read())
    tests = {str(path.relative_to(ROOT)) for path in (ROOT / "tests").rglob("*.py")}
    migrations = {f"migrations/{name}" for name in migration_files()}
    required = {"LICENSE", "README.md", "CHANGELOG.md", "dorkstore/py.typed"}
    require(sdist, names, required | migrations | tests)
    if unknown := set(pkg_info.get_all("Classifier", [])) - trove_classifiers.classifiers:
        sys.exit(f"PyPI would refuse unknown classifiers: {', '.join(sorted(unknown))}")


def check_wheel(wheel: Path, version: str) -> None:
    """Exit unless the wheel holds py.typed, every migration and the licence in its dist-info."""
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = {f"dorkstore/migrations/{name}" for name in migration_files()}
    require(wheel, names, {"dorkstore/py.typed", *migrations})
    # setuptools >= 77 puts it in dist-info/licenses/, older ones in dist-info/.
    dist_info = f"dorkstore-{version}.dist-info/"
    if not any(name.startswith(dist_info) and name.endswith("/LICENSE") for name in names):
        sys.exit(f"{wheel.name} has no LICENSE under {dist_info}")


def probe(wheel: Path, work: Path, version: str) -> None:
    """Install `wheel` alone in a fresh venv under `work`; migrate a new database with it."""
    work.mkdir()
    venv.create(work / "venv", with_pip=True)
    bin_dir = work / "venv" / "bin"
    run(bin_dir / "python", "-m", "pip", "install", "--quiet", wheel)
    (work / "probe.py").write_text(PROBE)
    run(bin_dir / "python", "-I", work / "probe.py", work / "new.db", version, cwd=work)
    run(bin_dir / "dorkstore", "check-migrations", cwd=work)
    if version not in run(bin_dir / "dorkstore", "--version", cwd=work).split():
        sys.exit(f"`dorkstore --version` from {wheel.name} does not print {version}")


def main(workdir: Path) -> None:
    """Build, inspect and probe the sdist and both wheels under `workdir`."""
    work = workdir / "check-wheel"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    version = tree_version()
    # With neither --sdist nor --wheel, build makes the sdist, then the wheel from it.
    run(sys.executable, "-m", "build", "--outdir", work / "dist", ROOT)
    run(sys.executable, "-m", "build", "--wheel", "--outdir", work / "tree", ROOT)
    sdist = only(work / "dist", f"dorkstore-{version}.tar.gz")
    sdist_wheel = only(work / "dist", f"dorkstore-{version}-*.whl")
    tree_wheel = only(work / "tree", f"dorkstore-{version}-*.whl")
    run(sys.executable, "-m", "twine", "check", "--strict", sdist, sdist_wheel, tree_wheel)
    check_sdist(sdist, version)
    for wheel in (sdist_wheel, tree_wheel):
        check_wheel(wheel, version)
    probe(sdist_wheel, work / "from-sdist", version)
    probe(tree_wheel, work / "from-tree", version)


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
