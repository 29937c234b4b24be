"""Prometheus metrics, read straight from the server's running totals at scrape time.

The host keeps plain counts (`Server.counters`, the dispatcher's, the backlog's) and never
imports prometheus_client; this module turns them into metric families (`totals`), beside what
every worker reads alike from the database (`shared`: the outbox's backlog, the live workers).
Label values come from closed sets (channels, statuses, skip and cancel reasons, sweeps) or
from the journeys loaded, so the number of series stays small.

One process (`journey serve`): the totals are read at scrape time, with prometheus_client's
process, platform and garbage-collector collectors. Several behind one port (`--workers K`,
`PROMETHEUS_MULTIPROC_DIR` set by the parent): each worker writes its totals to its own file
in that folder (`engine.http.multiprocess`) and a scrape, whichever worker answers it, sums
every worker's file, so every scrape shows the same totals and they never go back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from channels import CHANNELS
from engine.errors import StoreError
from engine.host.histogram import Histogram
from engine.host.server import Server
from engine.http.multiprocess import Mirror, WorkersCollector, multiprocess_dir

SWEEPS = ("inbox", "timers", "outbox")
Family = CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily
WORKER_METRICS = (  # name, key of the worker's stats, kind, help
    ("journey_worker_partitions", "partitions", GaugeMetricFamily, "Partitions of the users each worker owns"),
    ("journey_worker_lease_changes", "lease_changes", CounterMetricFamily, "Partitions each worker took or gave up"),
    ("journey_worker_events_processed", "events_processed", CounterMetricFamily, "Events each worker processed"),
    ("journey_worker_events_seconds", "events_seconds", CounterMetricFamily, "Time each worker spent processing "
     "events"),
    ("journey_worker_timers_fired", "timers_fired", CounterMetricFamily, "Timers each worker fired"),
    ("journey_worker_timer_seconds", "timer_seconds", CounterMetricFamily, "Time each worker spent firing timers"),
    ("journey_worker_cpu_seconds", "cpu_seconds", CounterMetricFamily, "Thread CPU of each worker's engine turns"),
)


class _Collector:
    """A prometheus_client collector over one of `Metrics`' family readers."""

    def __init__(self, read: Callable[[], Iterator[Family]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Family]:
        return self._read()


class Metrics:
    """Prometheus metrics read straight from the server's running totals at scrape time."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.registry = CollectorRegistry()
        self.mirror: Mirror | None = None
        folder = multiprocess_dir()
        if folder is None:
            self.registry.register(_Collector(self.totals))
            ProcessCollector(registry=self.registry)  # CPU, memory, open files (on Linux)
            GCCollector(registry=self.registry)  # collections per generation
        else:  # per-process figures (CPU, memory, collections) would flip from scrape to scrape: left out
            self.mirror = Mirror(self.totals)
            server.tally.counted = self.mirror.changed
            self.mirror.start()
            self.registry.register(WorkersCollector(folder))
        self.registry.register(_Collector(self.shared))
        PlatformCollector(registry=self.registry)  # python_info

    def shared(self) -> Iterator[Family]:
        """What every worker reads alike from the database."""
        yield from self._outbox()
        yield from self._workers()

    def totals(self) -> Iterator[Family]:
        """This process's running totals."""
        yield from self._events()
        yield from self._messages()
        yield from self._sweeps()
        yield from self._costs()
        c = self.server.counters
        failures = CounterMetricFamily("journey_instance_failures", "Instances that ended failed, by journey and the "
                                       "step they failed at", labels=["journey", "step"])
        for (journey, step), total in sorted(dict(c.instance_failures).items()):
            failures.add_metric([journey, step], total)
        yield failures
        yield GaugeMetricFamily("journey_journeys_loaded", "Journeys loaded", value=len(self.server.engine.journeys))

    def _events(self) -> Iterator[Family]:
        c = self.server.counters
        yield _labelled(CounterMetricFamily, "journey_events", "Events by outcome", "outcome",
                        {"accepted": c.accepted, "duplicate": c.duplicates, "rejected": c.rejected,
                         "failed": c.failed})
        backlog = self.server.backlog
        yield GaugeMetricFamily("journey_events_queued", "Accepted events waiting in the inbox",
                                value=backlog.queued - backlog.dequeued)
        yield CounterMetricFamily("journey_inbox_processed", "Events taken out of the inbox", value=backlog.dequeued)
        yield CounterMetricFamily("journey_inbox_seconds", "Time spent processing the inbox", value=backlog.seconds)
        yield _histogram("journey_event_processing_seconds", "Time to process one batch of events in one "
                         "transaction (a single event posted is a batch of one; inbox batches too)", c.processing)
        yield CounterMetricFamily("journey_timers_fired", "Timers fired", value=c.timers_fired)
        yield CounterMetricFamily("journey_timer_sweep_seconds", "Time spent firing timers", value=c.timer_seconds)
        yield _histogram("journey_timer_lateness_seconds", "How late each timer fired: fire time minus due time",
                         c.lateness)

    def _messages(self) -> Iterator[Family]:
        c, dispatcher = self.server.counters, self.server.dispatcher
        messages = CounterMetricFamily("journey_messages", "Messages by channel and status: queued by the engine, "
                                       "then each attempt's outcome (sent, failed, cancelled, unknown, deferred, "
                                       "retried)",
                                       labels=["channel", "status"])
        for channel, total in sorted(dict(c.queued).items()):
            messages.add_metric([channel, "queued"], total)
        for (channel, status), total in sorted(dict(dispatcher.outcomes).items()):
            messages.add_metric([channel, status], total)
        yield messages
        yield CounterMetricFamily("journey_messages_sent", "Messages handed to providers", value=dispatcher.sent)
        yield _labelled(CounterMetricFamily, "journey_cost", "Cost of the messages queued, by channel, at the "
                        "policy's prices", "channel", dict(c.cost))
        yield _labelled(CounterMetricFamily, "journey_skips", "Sends that sent nothing, by reason", "reason",
                        {"no_eligible_channel": 0, "template_error": 0, **c.skips})
        cancelled = {"opted_out": 0, "no_consent": 0, "no_address": 0, **dispatcher.cancelled}
        yield _labelled(CounterMetricFamily, "journey_messages_cancelled", "Messages kept back at dispatch because "
                        "they may no longer go, by reason", "reason", cancelled)
        yield CounterMetricFamily("journey_messages_in_doubt", "Messages left `unknown`: caught mid-call by a "
                                  "crash, or taken by a provider without a readable answer", value=dispatcher.in_doubt)

    def _costs(self) -> Iterator[Family]:
        """What the engine's work costs, whatever the load of the machine: its turns' thread CPU,
        and the SQL statements and rows written at the driver (engine/stores/sql/stats.py)."""
        yield CounterMetricFamily("journey_engine_cpu_seconds", "Thread CPU spent in the engine's turns (sweeps, "
                                  "batches taken in)", value=self.server.counters.cpu.seconds)
        stats = getattr(self.server.store, "stats", None)  # a SQL store's
        if stats is not None:
            yield CounterMetricFamily("journey_sql_statements", "SQL statements executed (an executemany: one a "
                                      "row; the pool's pings of idle connections included)", value=stats.statements)
            yield CounterMetricFamily("journey_sql_rows_written", "Rows the SQL writes changed", value=stats.rows)

    def _outbox(self) -> Iterator[Family]:
        """The one metric read from the database (one grouped count): the backlog is in the rows, and
        kept counts would drift from them across restarts and other workers. Left out while the
        database is down, so that /metrics still answers then."""
        try:
            queued = self.server.store.outbox.outbox_queued()
        except StoreError:
            return
        yield _labelled(GaugeMetricFamily, "journey_outbox_queued", "Messages waiting in the outbox, by channel: "
                        "due, to be retried, deferred by quiet hours or held back by a send rate", "channel",
                        {**dict.fromkeys(CHANNELS, 0), **queued})

    def _sweeps(self) -> Iterator[Family]:
        c = self.server.counters
        yield _labelled(CounterMetricFamily, "journey_sweeps", "Completed runs of each background sweep", "sweep",
                        {sweep: c.sweeps[sweep] for sweep in SWEEPS})
        yield _labelled(CounterMetricFamily, "journey_sweep_failures", "Runs of each sweep that failed", "sweep",
                        {sweep: c.sweep_failures[sweep] for sweep in SWEEPS})
        yield _labelled(GaugeMetricFamily, "journey_sweep_failing", "Consecutive failed runs of each sweep "
                        "(0: healthy)", "sweep", {sweep: c.failing_runs[sweep] for sweep in SWEEPS})

    def _workers(self) -> Iterator[Family]:
        """Every live worker on the database, labelled by worker id, each as of its last heartbeat
        (this one too): whichever worker is scraped, the same figures. Alone on SQLite: none.
        Left out while the database is down."""
        ownership = self.server.ownership
        if ownership is None:
            return
        try:
            reported = {w["worker"]: w["stats"] for w in ownership.leases.live_workers()}
        except StoreError:
            return
        yield GaugeMetricFamily("journey_workers_live", "Workers alive on this database", value=len(reported))
        for name, key, kind, text in WORKER_METRICS:
            yield _labelled(kind, name, text, "worker", {w: stats.get(key, 0) for w, stats in reported.items()})

    def render(self) -> bytes:
        if self.mirror is not None:
            self.mirror.publish()  # this worker's latest; the others' are at most an interval old
        return generate_latest(self.registry)


def _labelled(kind: type[CounterMetricFamily] | type[GaugeMetricFamily], name: str, help_text: str, label: str,
              values: Mapping[str, Any]) -> Family:
    family = kind(name, help_text, labels=[label])
    for value, total in sorted(values.items()):
        family.add_metric([value], total)
    return family


def _histogram(name: str, help_text: str, histogram: Histogram) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, help_text, buckets=histogram.cumulative(), sum_value=histogram.total)
