"""The server's running totals: what /metrics shows and the worker reports with its heartbeat.

Plain counts kept by the host (it never imports prometheus_client); the API layer reads them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from engine.host.cpu import EngineCpu
from engine.host.histogram import LATENESS_BOUNDS, PROCESSING_BOUNDS, Histogram
from engine.state import Committed


@dataclass(slots=True)
class Counters:
    """Totals for /metrics, kept here so the API layer only reads them."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    timers_fired: int = 0
    timer_seconds: float = 0.0
    failed: int = 0  # queued events set aside (the inbox's own totals are in `Backlog`)
    ingested: int = 0  # events processed as they came in (`ingest`)
    ingest_seconds: float = 0.0  # time spent on them
    sweeps: Counter[str] = field(default_factory=Counter)  # completed runs of each sweep: inbox, timers, outbox
    sweep_failures: Counter[str] = field(default_factory=Counter)  # runs of each sweep that raised
    failing: dict[str, str] = field(default_factory=dict)  # sweep -> its error, while it keeps failing
    failing_runs: Counter[str] = field(default_factory=Counter)  # consecutive failed runs of each sweep
    instance_failures: Counter[tuple[str, str]] = field(default_factory=Counter)  # failed alone: (journey, step)
    queued: Counter[str] = field(default_factory=Counter)  # messages the engine queued, by channel
    cost: Counter[str] = field(default_factory=Counter)  # their cost (the policy's prices), by channel
    skips: Counter[str] = field(default_factory=Counter)  # sends that sent nothing, by reason
    processing: Histogram = field(default_factory=lambda: Histogram(PROCESSING_BOUNDS))  # seconds per batch
    lateness: Histogram = field(default_factory=lambda: Histogram(LATENESS_BOUNDS))  # seconds per fired timer
    cpu: EngineCpu = field(default_factory=EngineCpu)  # thread CPU of the engine's turns

    def committed(self, summary: Committed) -> None:
        """Count what one committed transaction of the engine did (a few dict updates)."""
        self.queued.update(summary.queued)
        self.cost.update(summary.cost)
        self.skips.update(summary.skips)
        self.lateness.observe_all(summary.lateness)
