"""Timestamps have one canonical form; inputs are normalised or refused (SPEC section 4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dorkstore import validation
from dorkstore.errors import ValidationError
from dorkstore.timestamps import format_timestamp, parse_timestamp

CANONICAL = "2026-02-25T14:03:07.123Z"


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 2, 25, 14, 3, 7, 123456, tzinfo=UTC),
        datetime(2026, 2, 25, 16, 3, 7, 123000, tzinfo=timezone(timedelta(hours=2))),
        "2026-02-25T14:03:07.123Z",
        "2026-02-25T14:03:07.123+00:00",
        "2026-02-25T09:03:07.123-05:00",
        "2026-02-25T14:03:07.123999Z",
    ],
)
def test_aware_inputs_are_normalised(value: object) -> None:
    """Aware datetimes and ISO strings with any offset give UTC, milliseconds, Z."""
    assert CANONICAL == parse_timestamp(value, "at")


def test_epoch_milliseconds_are_accepted_where_allowed() -> None:
    """Trace timestamps may be Unix epoch milliseconds."""
    moment = datetime(2026, 2, 25, 14, 3, 7, 123000, tzinfo=UTC)
    assert CANONICAL == parse_timestamp(int(moment.timestamp() * 1000), "at", epoch_ms=True)


def test_epoch_zero_and_negative_milliseconds() -> None:
    """Epoch arithmetic is exact, before 1970 too."""
    assert "1970-01-01T00:00:00.000Z" == parse_timestamp(0, "at", epoch_ms=True)
    assert "1969-12-31T23:59:59.999Z" == parse_timestamp(-1, "at", epoch_ms=True)


def test_years_before_1000_are_zero_padded() -> None:
    """The canonical form always has a four-digit year, so strings still sort."""
    assert "0099-01-01T00:00:00.000Z" == format_timestamp(datetime(99, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 2, 25, 14, 3, 7),
        "2026-02-25T14:03:07",
        "2026-02-25",
        "yesterday",
        "",
        "2026-02-25T14:03:07Z\x00",
        1_772_028_187_123,
        True,
        None,
        1.5,
    ],
)
def test_ambiguous_or_unparseable_inputs_are_refused(value: object) -> None:
    """Naive datetimes, offset-less strings, junk and ints (outside traces) are ValidationErrors."""
    with pytest.raises(ValidationError, match="at"):
        parse_timestamp(value, "at")


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**17, True])
def test_out_of_range_epoch_values_are_refused(value: int) -> None:
    """Epoch values beyond 64 bits or the datetime range are ValidationErrors."""
    with pytest.raises(ValidationError):
        parse_timestamp(value, "at", epoch_ms=True)


def test_offset_pushing_past_year_9999_is_refused() -> None:
    """A timestamp that leaves the representable range in UTC is a ValidationError."""
    with pytest.raises(ValidationError):
        parse_timestamp("9999-12-31T23:59:59-05:00", "at")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (5, "must be a str"),
        ("", "must not be empty"),
        ("a\x00b", "NUL"),
        ("\ud800", "surrogate"),
    ],
)
def test_text_refuses_what_sqlite_cannot_store_faithfully(value: object, message: str) -> None:
    """Non-strings, empty strings, NUL characters and lone surrogates are refused."""
    with pytest.raises(ValidationError, match=message):
        validation.text(value, "name")


@pytest.mark.parametrize("value", [True, 2**63, 1.0, "1", None])
def test_integer_refuses_bools_floats_and_64_bit_overflow(value: object) -> None:
    """Only ints that fit a SQLite INTEGER pass."""
    with pytest.raises(ValidationError):
        validation.integer(value, "n")


def test_json_text_refuses_what_json_cannot_encode() -> None:
    """NaN, sets and circular structures are ValidationErrors."""
    circular: list[object] = []
    circular.append(circular)
    for value in (float("nan"), {1, 2}, circular):
        with pytest.raises(ValidationError):
            validation.json_text(value, "payload")


def test_text_tuple_refuses_a_bare_string() -> None:
    """A str is iterable, but ("c", "o", "d", "e") is never what was meant."""
    with pytest.raises(ValidationError):
        validation.text_tuple("code", "capabilities")
