"""The drift check: the migrations must build the schema the models describe.

peewee-migrate has no such check of its own. It runs on SQLite scratch
databases in memory, whatever backend is in use: the migrations are the same
on every backend, and so is what they must build.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import peewee as pw
from peewee_migrate.router import compile_migrations

from dorkstore.backends.sqlite import describe_schema, scratch_database
from dorkstore.errors import MigrationError
from dorkstore.migrate.runner import HISTORY_TABLE, apply_pending, replay, router
from dorkstore.models import MODELS

__all__ = ["check_migrations"]


def check_migrations(directory: Path | None = None) -> str | None:
    """Return the migration the models need beyond `directory`'s, or None if none is missing.

    The migrations are applied to an in-memory database and its schema is
    compared, table by table, with the one the models create; peewee-migrate's
    own diff supplies the source when it can express the change. Differences it
    cannot express (SQL defaults, checks, ON DELETE, index names, WITHOUT
    ROWID) are listed for a hand-written migration.
    """
    migrated = scratch_database()
    files = router(migrated, directory)
    if not files.migrate_dir.is_dir():
        raise MigrationError(f"migration directory {files.migrate_dir} does not exist")
    with migrated.connection_context():
        apply_pending(migrated, directory=files.migrate_dir)
        source = compile_migrations(replay(migrated, files, files.todo), list(MODELS))
        expected = scratch_database()
        with expected.connection_context():
            for model in MODELS:
                pw.SchemaManager(model, database=expected).create_all()
            differences = _differences(
                describe_schema(expected, skip=HISTORY_TABLE),
                describe_schema(migrated, skip=HISTORY_TABLE),
            )
    if not source and not differences:
        return None
    parts = [textwrap.dedent(source).strip()] if source else []
    if differences:
        parts.append(
            "# Write by hand (peewee-migrate cannot generate these); "
            "'-' is the migrated schema, '+' the models':\n"
            + "\n".join(f"# {line}" for line in differences)
        )
    return "\n\n".join(parts) + "\n"


def _differences(expected: dict[str, list[str]], actual: dict[str, list[str]]) -> list[str]:
    differences = []
    for table in sorted(expected.keys() | actual.keys()):
        want, have = set(expected.get(table, [])), set(actual.get(table, []))
        differences += [f"{table}: - {line}" for line in sorted(have - want)]
        differences += [f"{table}: + {line}" for line in sorted(want - have)]
    return differences
