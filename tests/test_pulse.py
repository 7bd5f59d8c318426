"""PulseStore: schedules and run history (SPEC section 5)."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import UTC, datetime
from pathlib import Path

import peewee as pw
import pytest
from playhouse.test_utils import assert_query_count

from dorkstore import UNSET, NotFoundError, PulseStore, Run, Schedule, ValidationError
from dorkstore.repositories.pulse import INTERRUPTED_ERROR
from tests.helpers import FakeClock


@pytest.fixture
def store(db: pw.SqliteDatabase, clock: FakeClock) -> PulseStore:
    return PulseStore(clock=clock)


def make_schedule(store: PulseStore, name: str = "nightly", **options: object) -> Schedule:
    return store.create_schedule(name, "summarise the day", "0 2 * * *", **options)


def test_create_schedule_applies_the_defaults(store: PulseStore) -> None:
    """A new schedule has the spec's defaults and created_at == updated_at == now."""
    schedule = make_schedule(store)
    assert (
        "UTC",
        True,
        "acceptEdits",
        "active",
        None,
        None,
        None,
        "2026-02-25T14:03:07.123Z",
        "2026-02-25T14:03:07.123Z",
    ) == (
        schedule.timezone,
        schedule.enabled,
        schedule.permission_mode,
        schedule.status,
        schedule.description,
        schedule.cwd,
        schedule.max_runtime,
        schedule.created_at,
        schedule.updated_at,
    )
    assert 26 == len(schedule.id)


@pytest.mark.parametrize(
    "now",
    [datetime(2026, 1, 1), datetime(1969, 12, 31, 23, 59, tzinfo=UTC), "2026-01-01T00:00:00Z"],
)
def test_a_bad_clock_is_a_validation_error(db: pw.SqliteDatabase, now: object) -> None:
    """A clock returning a naive time, a time before 1970 or a string is refused clearly."""
    with pytest.raises(ValidationError, match="clock"):
        PulseStore(clock=lambda: now).create_schedule("n", "p", "* * * * *")  # type: ignore[arg-type,return-value]


def test_cwd_may_be_a_path_object(store: PulseStore) -> None:
    """cwd takes an os.PathLike as well as a str."""
    assert "/srv/app" == make_schedule(store, cwd=Path("/srv/app")).cwd


def test_created_schedule_reads_back_equal(store: PulseStore) -> None:
    """get_schedule returns exactly what create_schedule returned."""
    schedule = make_schedule(store, description="d", cwd="/w", max_runtime=60_000, timezone=None)
    assert schedule == store.get_schedule(schedule.id)
    assert "UTC" == schedule.timezone


def test_records_are_frozen(store: PulseStore) -> None:
    """Records are immutable values, not live model instances."""
    schedule = make_schedule(store)
    with pytest.raises(FrozenInstanceError):
        schedule.name = "other"  # type: ignore[misc]


def test_get_schedule_of_a_missing_id_is_none(store: PulseStore) -> None:
    """A missing schedule is None."""
    assert store.get_schedule("01ZZZZZZZZZZZZZZZZZZZZZZZZ") is None


def test_list_schedules_is_oldest_first(store: PulseStore, clock: FakeClock) -> None:
    """Schedules come back in creation order."""
    first = make_schedule(store, "a")
    clock.advance(seconds=1)
    second = make_schedule(store, "b")
    assert [first, second] == store.list_schedules()


def test_list_schedules_of_an_empty_table(store: PulseStore) -> None:
    """No schedules, empty list."""
    assert [] == store.list_schedules()


def test_update_schedule_changes_fields_and_moves_updated_at(
    store: PulseStore, clock: FakeClock
) -> None:
    """Only the named fields change, and updated_at moves to now."""
    schedule = make_schedule(store)
    clock.advance(minutes=1)
    updated = store.update_schedule(schedule.id, enabled=False, status="paused", timezone=None)
    assert updated is not None
    assert (False, "paused", "UTC", "2026-02-25T14:04:07.123Z", schedule.created_at) == (
        updated.enabled,
        updated.status,
        updated.timezone,
        updated.updated_at,
        updated.created_at,
    )
    assert updated == store.get_schedule(schedule.id)


@pytest.mark.parametrize("field", ["id", "created_at", "updated_at", "colour"])
def test_update_schedule_refuses_immutable_or_unknown_fields(store: PulseStore, field: str) -> None:
    """Fields a schedule does not have, or may not change, are ValidationErrors."""
    schedule = make_schedule(store)
    with pytest.raises(ValidationError, match=field):
        store.update_schedule(schedule.id, **{field: "x"})
    assert schedule == store.get_schedule(schedule.id)


def test_update_schedule_keeps_unset_fields_and_clears_none(store: PulseStore) -> None:
    """A field not given (or given UNSET) keeps its value; None clears an optional one."""
    schedule = make_schedule(store, description="old", cwd="/work", max_runtime=60_000)
    updated = store.update_schedule(schedule.id, description=None, cwd=UNSET, name=UNSET)
    assert updated is not None
    assert ("nightly", None, "/work", 60_000) == (
        updated.name,
        updated.description,
        updated.cwd,
        updated.max_runtime,
    )


def test_update_schedule_of_a_missing_id_is_none(store: PulseStore) -> None:
    """Updating a missing schedule returns None."""
    assert store.update_schedule("nope", name="x") is None


def test_delete_schedule_cascades_to_its_runs_only(store: PulseStore) -> None:
    """Deleting a schedule deletes its runs and no others."""
    doomed, kept = make_schedule(store, "doomed"), make_schedule(store, "kept")
    for _ in range(3):
        store.create_run(doomed.id)
    survivor = store.create_run(kept.id)
    assert store.delete_schedule(doomed.id) is True
    assert (None, 0, [survivor]) == (
        store.get_schedule(doomed.id),
        store.count_runs(doomed.id),
        store.list_runs(),
    )


def test_delete_schedule_of_a_missing_id_is_false(store: PulseStore) -> None:
    """Deleting a missing schedule returns False."""
    assert store.delete_schedule("nope") is False


def test_create_run_starts_running(store: PulseStore) -> None:
    """A new run is running, started now, with the given trigger."""
    schedule = make_schedule(store)
    run = store.create_run(schedule.id, trigger="manual")
    assert ("running", "manual", "2026-02-25T14:03:07.123Z", None) == (
        run.status,
        run.trigger,
        run.started_at,
        run.finished_at,
    )
    assert run == store.get_run(run.id)


def test_create_run_of_an_unknown_schedule_is_not_found(store: PulseStore) -> None:
    """A run needs its schedule."""
    with pytest.raises(NotFoundError, match="nope"):
        store.create_run("nope")


def test_create_run_refuses_an_unknown_trigger(store: PulseStore) -> None:
    """Triggers are an enumeration."""
    schedule = make_schedule(store)
    with pytest.raises(ValidationError, match="trigger"):
        store.create_run(schedule.id, trigger="cron")


def test_update_run_sets_only_the_given_fields(store: PulseStore) -> None:
    """Arguments left as None keep their value; timestamps are normalised."""
    run = store.create_run(make_schedule(store).id)
    store.update_run(run.id, output="partial", session_id="s1")
    updated = store.update_run(
        run.id, status="completed", finished_at="2026-02-25T15:03:07.5+01:00", duration_ms=500
    )
    assert updated is not None
    assert ("completed", "2026-02-25T14:03:07.500Z", 500, "partial", "s1", None) == (
        updated.status,
        updated.finished_at,
        updated.duration_ms,
        updated.output,
        updated.session_id,
        updated.error,
    )


def test_update_run_of_a_missing_id_is_none(store: PulseStore) -> None:
    """Updating a missing run returns None, with or without fields."""
    assert store.update_run("nope", status="failed") is None
    assert store.update_run("nope") is None


def test_update_run_refuses_an_unknown_status(store: PulseStore) -> None:
    """Run statuses are an enumeration."""
    run = store.create_run(make_schedule(store).id)
    with pytest.raises(ValidationError, match="status"):
        store.update_run(run.id, status="done")


def test_update_run_refuses_a_naive_datetime(store: PulseStore) -> None:
    """A naive datetime type-checks (its type cannot tell) but is a ValidationError."""
    run = store.create_run(make_schedule(store).id)
    with pytest.raises(ValidationError, match="finished_at"):
        store.update_run(run.id, status="completed", finished_at=datetime(2026, 2, 25, 14))
    assert run == store.get_run(run.id)


def test_list_runs_is_newest_first_with_id_breaking_ties(
    store: PulseStore, clock: FakeClock
) -> None:
    """Runs sort by created_at, then id, both descending."""
    schedule = make_schedule(store)
    same_time = [store.create_run(schedule.id) for _ in range(3)]
    clock.advance(seconds=1)
    newest = store.create_run(schedule.id)
    expected = [newest, *sorted(same_time, key=lambda run: run.id, reverse=True)]
    assert expected == store.list_runs()


def test_list_runs_filters_limits_and_offsets(store: PulseStore, clock: FakeClock) -> None:
    """schedule_id and status filter; limit and offset page."""
    one, two = make_schedule(store, "one"), make_schedule(store, "two")
    runs: list[Run] = []
    for _ in range(5):
        clock.advance(seconds=1)
        runs.append(store.create_run(one.id))
    store.create_run(two.id)
    failed = store.update_run(runs[0].id, status="failed")
    assert failed is not None
    runs[0] = failed
    newest_first = runs[::-1]
    assert newest_first == store.list_runs(schedule_id=one.id)
    assert newest_first[1:3] == store.list_runs(schedule_id=one.id, limit=2, offset=1)
    assert [failed] == store.list_runs(status="failed")
    assert [] == store.list_runs(schedule_id="nope")


@pytest.mark.parametrize(
    "arguments", [{"limit": 0}, {"limit": -1}, {"offset": -1}, {"status": "bogus"}]
)
def test_list_runs_refuses_bad_paging_and_filters(
    store: PulseStore, arguments: dict[str, object]
) -> None:
    """A limit below 1, a negative offset or an unknown status is a ValidationError."""
    with pytest.raises(ValidationError):
        store.list_runs(**arguments)  # type: ignore[arg-type]


def test_list_runs_runs_one_query(store: PulseStore) -> None:
    """Listing runs costs one query, however many runs there are."""
    schedule = make_schedule(store)
    for _ in range(10):
        store.create_run(schedule.id)
    with assert_query_count(1):
        assert 10 == len(store.list_runs())


def test_get_running_runs_and_count_runs(store: PulseStore) -> None:
    """Only running runs are returned; counts are per schedule or overall."""
    one, two = make_schedule(store, "one"), make_schedule(store, "two")
    running = store.create_run(one.id)
    done = store.create_run(one.id)
    store.update_run(done.id, status="completed")
    store.create_run(two.id)
    assert {running.id} < {run.id for run in store.get_running_runs()}
    assert done.id not in {run.id for run in store.get_running_runs()}
    assert (2, 1, 3) == (store.count_runs(one.id), store.count_runs(two.id), store.count_runs())


def test_prune_runs_keeps_exactly_the_newest(store: PulseStore, clock: FakeClock) -> None:
    """prune_runs keeps the newest N of that schedule and reports how many it deleted."""
    schedule, other = make_schedule(store, "a"), make_schedule(store, "b")
    runs = []
    for _ in range(7):
        clock.advance(seconds=1)
        runs.append(store.create_run(schedule.id))
    store.create_run(other.id)
    assert 4 == store.prune_runs(schedule.id, 3)
    assert runs[:3:-1] == store.list_runs(schedule_id=schedule.id)
    assert 1 == store.count_runs(other.id)
    assert 0 == store.prune_runs(schedule.id, 3)


def test_prune_runs_to_zero_deletes_all(store: PulseStore) -> None:
    """A retention of 0 keeps nothing."""
    schedule = make_schedule(store)
    for _ in range(2):
        store.create_run(schedule.id)
    assert (2, 0) == (store.prune_runs(schedule.id, 0), store.count_runs(schedule.id))


def test_prune_runs_refuses_a_negative_retention(store: PulseStore) -> None:
    """A negative retention_count is a ValidationError."""
    with pytest.raises(ValidationError):
        store.prune_runs(make_schedule(store).id, -1)


def test_mark_running_as_failed(store: PulseStore, clock: FakeClock) -> None:
    """Every running run becomes failed, finished now, with the restart error."""
    schedule = make_schedule(store)
    interrupted = [store.create_run(schedule.id) for _ in range(2)]
    finished = store.update_run(store.create_run(schedule.id).id, status="completed")
    clock.advance(minutes=10)
    assert 2 == store.mark_running_as_failed()
    for run in interrupted:
        after = store.get_run(run.id)
        assert after is not None
        assert ("failed", "2026-02-25T14:13:07.123Z", INTERRUPTED_ERROR) == (
            after.status,
            after.finished_at,
            after.error,
        )
    assert finished is not None
    assert finished == store.get_run(finished.id)
    assert 0 == store.mark_running_as_failed()
