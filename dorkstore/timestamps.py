"""The one timestamp format dorkstore stores: UTC, milliseconds, ``Z`` suffix.

Ordering and range queries compare these strings, so every timestamp written to
the database goes through `format_timestamp` or `parse_timestamp`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from dorkstore.errors import ValidationError
from dorkstore.validation import text

__all__ = ["EPOCH", "Clock", "format_timestamp", "parse_timestamp", "utc_now"]

#: A zero-argument callable returning an aware UTC datetime (a repository's `clock=`).
Clock = Callable[[], datetime]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CANONICAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
_INT64 = 2**63


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime (the default clock)."""
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """Return `moment` as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (truncated to the millisecond).

    Raises ValidationError for a naive datetime, whose offset is unknown, and
    for one that falls outside years 1 to 9999 once converted to UTC.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationError(f"naive datetime {moment.isoformat()!r} has no UTC offset")
    try:
        utc = moment.astimezone(UTC)
    except OverflowError as exc:
        raise ValidationError(f"{moment.isoformat()!r} is out of range in UTC") from exc
    # Explicit widths: strftime("%Y") does not zero-pad years before 1000 everywhere.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond // 1000:03d}Z"
    )


def parse_timestamp(value: object, name: str, *, epoch_ms: bool = False) -> str:
    """Normalise `value` to the canonical form, or raise ValidationError naming `name`.

    Accepts an aware `datetime` or an ISO 8601 string with an offset (``Z`` or
    ``+hh:mm``); with `epoch_ms`, also an int of Unix epoch milliseconds.
    Naive datetimes, strings without an offset and anything unparseable are
    refused: their meaning is ambiguous.
    """
    if isinstance(value, datetime):
        try:
            return format_timestamp(value)
        except ValidationError as exc:
            raise ValidationError(f"{name}: {exc}") from exc
    if isinstance(value, str):
        if _CANONICAL.fullmatch(value):  # the common case: already in the stored form
            try:
                datetime.fromisoformat(value)  # a real date and time, not 2026-02-30
            except ValueError as exc:
                raise ValidationError(f"{name}: {value!r} is not a valid timestamp") from exc
            return value
        # fromisoformat ignores some trailing junk, a NUL among it.
        text(value, name)
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValidationError(f"{name}: {value!r} is not an ISO 8601 timestamp") from exc
        if moment.tzinfo is None:
            raise ValidationError(f"{name}: {value!r} has no UTC offset; add 'Z' or '+hh:mm'")
        return format_timestamp(moment)
    if epoch_ms and isinstance(value, int) and not isinstance(value, bool):
        if not -_INT64 <= value < _INT64:
            raise ValidationError(f"{name}: {value} does not fit in 64 bits")
        try:
            return format_timestamp(EPOCH + timedelta(milliseconds=value))
        except OverflowError as exc:
            raise ValidationError(f"{name}: {value} ms is out of range") from exc
    accepted = "an aware datetime, an ISO 8601 string" + (
        " or epoch milliseconds" if epoch_ms else ""
    )
    raise ValidationError(f"{name} must be {accepted}, got {type(value).__name__}")
