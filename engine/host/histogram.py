"""A histogram kept as plain counts, so the host measures without importing prometheus_client.

The host observes on its hot paths (each processed batch, each fired timer); `/metrics` turns
the counts into a Prometheus histogram at scrape time (`engine.http.metrics`). Observing is a
bisect and two additions: no lock, no allocation.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field

# seconds: one event batch takes from a millisecond to seconds; a timer fires from milliseconds
# to minutes late (a sweep interval, a backlog, an outage)
PROCESSING_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LATENESS_BOUNDS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)


@dataclass(slots=True)
class Histogram:
    """Counts per bucket (`bounds` are inclusive upper bounds; the last count is past them all)
    and the sum of what was observed."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def observe_all(self, values: Iterable[float]) -> None:
        for value in values:
            self.observe(value)

    def cumulative(self) -> list[tuple[str, int]]:
        """(`le`, count at or below it) per bucket, ending with `+Inf`: the Prometheus shape."""
        buckets, running = [], 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), list(self.counts), strict=True):
            running += count
            buckets.append((bound, running))
        return buckets
