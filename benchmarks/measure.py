"""What a measurement is and how it is taken: medians of alternating rounds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Result:
    """One scenario's medians (seconds per operation unless `unit` says otherwise)."""

    group: str
    scenario: str
    unit: str
    dorkstore: float
    baseline: float | None = None
    target: float | None = None
    indexless: float | None = None
    rows: int | None = None
    #: An absolute target too: at most this many seconds (per operation).
    limit: float | None = None

    @property
    def ratio(self) -> float | None:
        """Dorkstore / baseline (for throughput, baseline / dorkstore): lower is better."""
        if self.baseline is None:
            return None
        if self.unit == "calls/s":
            return self.baseline / self.dorkstore
        return self.dorkstore / self.baseline

    @property
    def speedup(self) -> float | None:
        """How many times faster than the index-less schema."""
        return None if self.indexless is None else self.indexless / self.dorkstore

    @property
    def met(self) -> bool | None:
        """Whether the target holds: ratio within it, 100x over index-less and the limit."""
        if self.target is None or self.ratio is None:
            return None
        return (
            self.ratio <= self.target
            and (self.speedup is None or self.speedup >= 100)
            and (self.limit is None or self.dorkstore <= self.limit)
        )


def alternate(
    rounds: int,
    ours: Callable[[], Any],
    raw: Callable[[], Any],
    *,
    setup: Callable[[], Any] | None = None,
    per: int = 1,
) -> tuple[float, float]:
    """Time `ours` and `raw` alternately, `rounds` times each; return their median / `per`."""
    timings: dict[str, list[float]] = {"ours": [], "raw": []}
    for round_ in range(rounds):
        order = [("ours", ours), ("raw", raw)]
        for name, function in order if round_ % 2 == 0 else order[::-1]:
            if setup:
                setup()
            started = time.perf_counter()
            function()
            timings[name].append(time.perf_counter() - started)
    return statistics.median(timings["ours"]) / per, statistics.median(timings["raw"]) / per


def median_time(rounds: int, function: Callable[[], Any], per: int = 1) -> float:
    """Median seconds of `function` over `rounds` runs, divided by `per`."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times) / per
