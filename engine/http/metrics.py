"""Prometheus metrics, read straight from the server's running totals at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from engine.host.server import Server


class Metrics:
    """Prometheus metrics read straight from the server's running totals at scrape time."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        c = self.server.counters
        events = CounterMetricFamily("journey_events", "Events by outcome", labels=["outcome"])
        for outcome, total in (("accepted", c.accepted), ("duplicate", c.duplicates), ("rejected", c.rejected),
                               ("failed", c.failed)):
            events.add_metric([outcome], total)
        yield events
        backlog = self.server.backlog
        yield GaugeMetricFamily("journey_events_queued", "Accepted events waiting in the inbox",
                                value=backlog.queued - backlog.dequeued)
        yield CounterMetricFamily("journey_inbox_processed", "Events taken out of the inbox", value=backlog.dequeued)
        yield CounterMetricFamily("journey_inbox_seconds", "Time spent processing the inbox", value=backlog.seconds)
        yield CounterMetricFamily("journey_timers_fired", "Timers fired", value=c.timers_fired)
        yield CounterMetricFamily("journey_timer_sweep_seconds", "Time spent firing timers", value=c.timer_seconds)
        yield CounterMetricFamily("journey_messages_sent", "Messages handed to providers",
                                  value=self.server.dispatcher.sent)
        sweeps = CounterMetricFamily("journey_sweeps", "Completed runs of each background sweep", labels=["sweep"])
        for sweep in ("inbox", "timers", "outbox"):
            sweeps.add_metric([sweep], c.sweeps[sweep])
        yield sweeps
        failures = CounterMetricFamily("journey_sweep_failures", "Runs of each sweep that failed", labels=["sweep"])
        failing = GaugeMetricFamily("journey_sweep_failing", "Consecutive failed runs of each sweep (0: healthy)",
                                    labels=["sweep"])
        for sweep in ("inbox", "timers", "outbox"):
            failures.add_metric([sweep], c.sweep_failures[sweep])
            failing.add_metric([sweep], c.failing_runs[sweep])
        yield failures
        yield failing
        instances = CounterMetricFamily("journey_instance_failures", "Instances that failed on their own, by journey",
                                        labels=["journey"])
        for journey_id, total in sorted(c.instance_failures.items()):
            instances.add_metric([journey_id], total)
        yield instances
        cancelled = CounterMetricFamily("journey_messages_cancelled",
                                        "Messages kept back at dispatch because they may no longer go, by reason",
                                        labels=["reason"])
        for reason in ("opted_out", "no_consent", "no_address"):
            cancelled.add_metric([reason], self.server.dispatcher.cancelled[reason])
        yield cancelled
        yield CounterMetricFamily("journey_messages_in_doubt", "Messages a crash caught mid-call, left `unknown`",
                                  value=self.server.dispatcher.in_doubt)
        yield GaugeMetricFamily("journey_journeys_loaded", "Journeys loaded", value=len(self.server.engine.journeys))

    def render(self) -> bytes:
        return generate_latest(self.registry)
