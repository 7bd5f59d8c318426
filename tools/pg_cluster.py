"""Start a throwaway PostgreSQL cluster on a free local port, run a command, stop it.

    python tools/pg_cluster.py run -- python -m tox -e py311-postgres
        starts a cluster, runs the command with DORKSTORE_TEST_PG set to its
        URL, stops the cluster whatever happens, and exits with the command's
        status;
    python tools/pg_cluster.py start DIR    starts one in DIR and prints its URL
    python tools/pg_cluster.py stop DIR     stops it and removes DIR

PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` user (Debian's package creates it). The cluster is made for
tests: trust authentication on 127.0.0.1 only, fsync off, UTF-8 with the C.UTF-8
locale (bytewise text order, as dorkstore needs). It uses Debian's
``postgresql`` binaries, found on PATH or under /usr/lib/postgresql; install
them with ``apt-get install -y postgresql`` when ``initdb`` is missing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

USER = "postgres"
DATABASE = "postgres"


def binary(name: str) -> str:
    """Return the path of a PostgreSQL program, or exit saying how to install it."""
    found = shutil.which(name)
    if found is None:
        candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
        found = str(candidates[-1]) if candidates else None
    if found is None:
        sys.exit(f"pg_cluster: {name} not found; install it: apt-get install -y postgresql")
    return found


def as_server_user(command: list[str]) -> list[str]:
    """Run `command` as the postgres user when we are root (the server refuses root)."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", USER, "--", *command]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(directory: Path) -> str:
    """Create and start a cluster in `directory`; return its URL."""
    data = directory / "data"
    data.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(directory, USER)
        shutil.chown(data, USER)
    subprocess.run(
        as_server_user([binary("initdb"), "-D", str(data), "-A", "trust", "-U", USER,
                        "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]),
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    port = free_port()
    options = (
        f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c full_page_writes=off -c synchronous_commit=off -c max_connections=200"
    )
    subprocess.run(
        as_server_user([binary("pg_ctl"), "-D", str(data), "-o", options, "-w",
                        "-l", str(directory / "server.log"), "start"]),
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    (directory / "port").write_text(str(port))
    return f"postgresql://{USER}@127.0.0.1:{port}/{DATABASE}"


def stop(directory: Path) -> None:
    """Stop the cluster in `directory` (fast shutdown) and remove it."""
    data = directory / "data"
    if (data / "postmaster.pid").exists():
        subprocess.run(
            as_server_user([binary("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            check=False, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    shutil.rmtree(directory, ignore_errors=True)


def run(command: list[str]) -> int:
    """Run `command` beside a new cluster; return its exit status."""
    directory = Path(tempfile.mkdtemp(prefix="dorkstore-pg-"))
    directory.chmod(0o755)
    try:
        url = start(directory)
        print(f"pg_cluster: PostgreSQL at {url}", flush=True)
        environment = os.environ | {"DORKSTORE_TEST_PG": url}
        return subprocess.run(command, env=environment, check=False).returncode
    finally:
        stop(directory)


def main() -> None:
    """Run the verb the command line names."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    verbs.add_parser("run").add_argument("command", nargs=argparse.REMAINDER)
    verbs.add_parser("start").add_argument("directory", type=Path)
    verbs.add_parser("stop").add_argument("directory", type=Path)
    options = parser.parse_args()
    if options.verb == "run":
        command = options.command[1:] if options.command[:1] == ["--"] else options.command
        if not command:
            parser.error("run needs a command after --")
        sys.exit(run(command))
    if options.verb == "start":
        print(start(options.directory))
    else:
        stop(options.directory)


if __name__ == "__main__":
    main()
