"""Hostile input: every write method, fed random values, raises only DorkstoreErrors.

Each test drives one write method with values Hypothesis draws (wrong types,
huge integers, NaN, lone surrogates, NUL bytes, naive datetimes, nested
containers, plausible values too) and then checks that the file is intact.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import peewee as pw
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dorkstore import (
    AgentRegistry,
    BudgetMapper,
    DenialList,
    DorkstoreError,
    IndexedMessage,
    PulseStore,
    RelayIndex,
    TraceStore,
    backends,
)

PLAUSIBLE = st.sampled_from(
    [
        "pending",
        "delivered",
        "sent",
        "processed",
        "running",
        "completed",
        "active",
        "paused",
        "manual",
        "2026-02-25T14:03:07.123Z",
        "2026-02-25T14:03:07",
        "0 2 * * *",
        "",
        " ",
        "\x00",
        "\ud800",
        "../..",
        "01KJ0000000000000000000000",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**65),
    st.integers(min_value=-(2**65), max_value=-(2**63) + 1),
    st.floats(),
    st.text(st.characters(codec=None, exclude_categories=())),
    st.binary(max_size=8),
    st.datetimes(),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-14, minutes=-59))])),
    PLAUSIBLE,
)
HOSTILE = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=3), SCALARS, max_size=3),
    st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=2), max_leaves=6),
)

# Values that pass validation but are still odd: any Unicode but NUL and lone
# surrogates, extreme ints and timestamps, nested JSON.
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1)
MOMENTS = st.datetimes(timezones=st.just(UTC))
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=8,
)
STATUSES = st.sampled_from(
    ["active", "paused", "pending_approval", "running", "completed", "failed", "cancelled",
     "timeout", "pending", "delivered", "sent", "processed", "dead_lettered", "inactive"]
)  # fmt: skip
VALID = {
    "status": STATUSES,
    "trigger": st.sampled_from(["scheduled", "manual", "agent"]),
    "enabled": st.booleans(),
    "capabilities": st.lists(TEXT, max_size=3),
    "payload": JSON,
    "metadata": JSON,
    "timezone": st.one_of(st.none(), TEXT),
    **dict.fromkeys(
        ["created_at", "expires_at", "finished_at", "last_seen_at", "registered_at",
         "window_start"],
        st.one_of(MOMENTS, MOMENTS.map(lambda m: m.isoformat())),
    ),
    **dict.fromkeys(
        ["delivered_at", "processed_at"],
        st.one_of(MOMENTS, st.integers(min_value=-(2**40), max_value=2**45)),
    ),
    **dict.fromkeys(
        ["max_runtime", "duration_ms", "retention_count", "max_calls_per_hour", "offset"],
        st.integers(min_value=0, max_value=2**63 - 1),
    ),
    "limit": st.one_of(st.integers(1, 100), st.integers(2**63 - 4, 2**63 - 1)),
}  # fmt: skip


def value_for(name: str) -> st.SearchStrategy[Any]:
    """Mostly values valid for parameter `name` (text by default), sometimes hostile ones."""
    valid = VALID.get(name, TEXT)
    # Not one_of(valid, valid, valid, HOSTILE): one_of flattens HOSTILE's many branches.
    return st.integers(0, 3).flatmap(lambda n: HOSTILE if n == 0 else valid)


FIELDS = [
    "name", "description", "cron", "timezone", "prompt", "cwd", "enabled", "max_runtime",
    "permission_mode", "status", "runtime", "namespace", "capabilities", "entrypoint",
    "version", "approver", "id", "project_path", "registered_at", "created_at", "bogus",
]  # fmt: skip
CHANGES = st.sampled_from(FIELDS).flatmap(
    lambda field: st.fixed_dictionaries({field: value_for(field)})
) | st.dictionaries(st.sampled_from(FIELDS), HOSTILE, max_size=4)
MESSAGES = st.lists(
    st.builds(
        IndexedMessage,
        *[
            st.sampled_from(["pending", "delivered", "failed"])
            if name == "status"
            else value_for(name)
            for name in IndexedMessage.__dataclass_fields__
        ],
    ),
    max_size=3,
)

# (repository, method): every method that writes. rebuild is tested on files below.
WRITE_METHODS = [
    (PulseStore, "create_schedule"),
    (PulseStore, "update_schedule"),
    (PulseStore, "delete_schedule"),
    (PulseStore, "create_run"),
    (PulseStore, "update_run"),
    (PulseStore, "prune_runs"),
    (PulseStore, "mark_running_as_failed"),
    (RelayIndex, "insert_message"),
    (RelayIndex, "insert_many"),
    (RelayIndex, "update_status"),
    (RelayIndex, "delete_expired"),
    (TraceStore, "insert_span"),
    (TraceStore, "update_span"),
    (AgentRegistry, "insert"),
    (AgentRegistry, "update"),
    (AgentRegistry, "remove"),
    (AgentRegistry, "update_health"),
    (DenialList, "deny"),
    (DenialList, "clear"),
    (BudgetMapper, "record_call"),
    (BudgetMapper, "try_consume"),
    (BudgetMapper, "check_budget"),
]


# Every method that only reads: hostile filters and limits must not crash them either.
READ_METHODS = [
    (PulseStore, "list_schedules"),
    (PulseStore, "get_schedule"),
    (PulseStore, "get_run"),
    (PulseStore, "list_runs"),
    (PulseStore, "get_running_runs"),
    (PulseStore, "count_runs"),
    (RelayIndex, "get_message"),
    (RelayIndex, "get_by_subject"),
    (RelayIndex, "get_by_endpoint"),
    (RelayIndex, "count_sender_in_window"),
    (RelayIndex, "count_pending_by_endpoint"),
    (RelayIndex, "query_messages"),
    (RelayIndex, "get_metrics"),
    (RelayIndex, "is_wal_mode"),
    (TraceStore, "get_span"),
    (TraceStore, "get_trace"),
    (TraceStore, "get_metrics"),
    (AgentRegistry, "get"),
    (AgentRegistry, "get_by_path"),
    (AgentRegistry, "list"),
    (AgentRegistry, "list_by_namespace"),
    (AgentRegistry, "get_with_health"),
    (AgentRegistry, "list_with_health"),
    (AgentRegistry, "get_aggregate_stats"),
    (DenialList, "is_denied"),
    (DenialList, "list"),
]
# Clocks a caller might pass by mistake: naive, before 1970, not a datetime at all.
CLOCK_VALUES = st.one_of(
    st.datetimes(),
    st.datetimes(max_value=datetime(1969, 12, 31), timezones=st.just(UTC)),
    SCALARS,
)


def arguments(method: Any) -> st.SearchStrategy[tuple[list[Any], dict[str, Any]]]:
    """Draw positional arguments, and any subset of the keyword arguments, for `method`."""
    positional: list[st.SearchStrategy[Any]] = []
    keywords: dict[str, st.SearchStrategy[Any]] = {}
    extra = st.just({})
    for name, parameter in inspect.signature(method).parameters.items():
        value = MESSAGES if name == "messages" else value_for(name)
        if parameter.kind is parameter.VAR_KEYWORD:
            extra = CHANGES
        elif parameter.kind is parameter.KEYWORD_ONLY:
            keywords[name] = value
        else:
            positional.append(value)
    return st.tuples(
        st.tuples(*positional).map(list),
        st.tuples(st.fixed_dictionaries({}, optional=keywords), extra).map(
            lambda pair: pair[0] | pair[1]
        ),
    )


def integrity(db: pw.Database) -> tuple[str, list[Any]]:
    """Return ("ok", []) when the backend's own checks find nothing wrong."""
    problems = [
        f"{check}: {problem}"
        for check, found in backends.backend_of(db).health_checks(db)
        for problem in found
    ]
    return ("ok" if not problems else "damaged"), problems


@pytest.mark.parametrize(
    ("repository", "name"), WRITE_METHODS + READ_METHODS, ids=lambda v: getattr(v, "__name__", v)
)
def test_method_raises_only_dorkstore_errors(
    db: pw.SqliteDatabase, repository: type, name: str
) -> None:
    """Whatever the arguments, a method returns or raises a DorkstoreError; the file is whole."""
    store = repository()
    if isinstance(store, PulseStore):
        schedule = store.create_schedule("seed", "p", "* * * * *")
        store.create_run(schedule.id)
    method = getattr(store, name)

    @settings(
        max_examples=100,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(arguments(method))
    def check(drawn: tuple[list[Any], dict[str, Any]]) -> None:
        args, kwargs = drawn
        with contextlib.suppress(DorkstoreError):
            method(*args, **kwargs)

    check()
    assert ("ok", []) == integrity(db)


@pytest.mark.parametrize(
    ("repository", "name"),
    [(PulseStore, "create_schedule"), (TraceStore, "insert_span"), (BudgetMapper, "try_consume"),
     (AgentRegistry, "list_with_health"), (DenialList, "deny"), (RelayIndex, "delete_expired")],
    ids=lambda v: getattr(v, "__name__", v),
)  # fmt: skip
def test_a_hostile_clock_gives_only_dorkstore_errors(
    db: pw.SqliteDatabase, repository: type, name: str
) -> None:
    """A clock returning junk makes methods that need "now" raise ValidationError, nothing else."""
    AgentRegistry().insert("a", "r", "/p")

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(now=CLOCK_VALUES, drawn=st.data())
    def check(now: object, drawn: st.DataObject) -> None:
        method = getattr(repository(clock=lambda: now), name)
        args, kwargs = drawn.draw(arguments(method))
        with contextlib.suppress(DorkstoreError):
            method(*args, **kwargs)

    check()
    assert ("ok", []) == integrity(db)


ENVELOPE_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "id": HOSTILE,
        "subject": HOSTILE,
        "from": HOSTILE,
        "createdAt": HOSTILE,
        "budget": st.one_of(HOSTILE, st.fixed_dictionaries({}, optional={"ttl": HOSTILE})),
        "payload": HOSTILE,
    },
)
FILE_CONTENT = st.one_of(
    st.binary(max_size=64),
    ENVELOPE_FIELDS.map(lambda e: json.dumps(e, default=repr).encode("utf-8", "surrogatepass")),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(files=st.lists(FILE_CONTENT, min_size=1, max_size=6))
def test_rebuild_skips_hostile_files_and_never_fails(
    db: pw.SqliteDatabase, tmp_path_factory: pytest.TempPathFactory, files: list[bytes]
) -> None:
    """rebuild indexes or skips every file, whatever it holds; each file is reported once."""
    root = tmp_path_factory.mktemp("maildir")
    folder = root / "ep" / "new"
    folder.mkdir(parents=True)
    for number, content in enumerate(files):
        (folder / f"M{number}.json").write_bytes(content)
    reports: list[tuple[Path, str | None]] = []
    indexed = RelayIndex().rebuild(root, report=lambda path, reason: reports.append((path, reason)))
    assert len(files) == len(reports)
    assert indexed == sum(reason is None for _, reason in reports)
    assert ("ok", []) == integrity(db)
