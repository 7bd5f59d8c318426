"""The one timestamp format dorkstore stores: UTC, milliseconds, ``Z`` suffix.

Ordering and range queries compare these strings, so every timestamp written to
the database must come through `format_timestamp`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from dorkstore.errors import ValidationError

__all__ = ["format_timestamp", "utc_now"]


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime (the default clock)."""
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """Return `moment` as ``YYYY-MM-DDTHH:MM:SS.mmmZ``.

    Raises ValidationError for a naive datetime: its offset is unknown.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationError(f"naive datetime {moment.isoformat()!r} has no UTC offset")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
