"""What every repository shares: the clock and new ids."""

from __future__ import annotations

from datetime import datetime

from dorkstore.errors import ValidationError
from dorkstore.timestamps import EPOCH, Clock, format_timestamp, utc_now

__all__ = ["Clock", "Repository"]


class Repository:
    """Base of the repositories: holds the clock; never a connection."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        if clock is not None and not callable(clock):
            raise ValidationError(f"clock must be callable, got {type(clock).__name__}")
        self._clock: Clock = clock or utc_now

    def _now(self) -> datetime:
        moment = self._clock()
        if not isinstance(moment, datetime) or moment.utcoffset() is None:
            raise ValidationError(f"clock must return an aware datetime, got {moment!r}")
        if moment < EPOCH:  # ULIDs and minute buckets count from 1970
            raise ValidationError(f"clock returned {moment.isoformat()}, before 1970")
        return moment

    def _now_text(self) -> str:
        return format_timestamp(self._now())

    def _new_id(self, moment: datetime | None = None) -> str:
        """Return a new ULID whose time part is `moment` (default: now)."""
        # Imported on first use: python-ulid reads its package metadata on import
        # (about 50 ms), which commands that never create a row should not pay.
        from ulid import ULID  # noqa: PLC0415

        return str(ULID.from_datetime(moment or self._now()))
