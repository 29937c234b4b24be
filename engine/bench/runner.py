"""`journey bench`: the W1 workload (docs/cli.md) against the real store, scheduler and dispatcher.

N users abandon a cart at once; the journey sends a push and waits up to T for
`push.opened`; 30% open 0.5 s after their push, the rest get an SMS when their timer
fires. The run is checked (N pushes, 0.7·N SMS, none to an opener, no duplicates) and
measured: ingest rate, timer sweep rate, wall time beyond T, timer lateness, memory, disk.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx

from channels import Policy, load_policy
from channels.providers import FileProvider
from engine.bench.burst import Burst, OutboxTail, Progress
from engine.bench.child import metrics, peak_rss_of, poster, rate, request_body, serve
from engine.bench.costs import Spent, children_of, postgres_cpu, postmaster_of, process_cpu
from engine.bench.workload import check_w1, opens, w1_journey, w1_profile, w1_yaml
from engine.clock import SystemClock
from engine.errors import InputError
from engine.host.server import Server
from engine.stores.sql import SqlStore

BATCH = {"python": 1000, "http": 500}  # events per call: HTTP as the issue measures it; Python as the sweeps batch
T = TypeVar("T")


@dataclass
class BenchResult:
    users: int
    via: str
    timeout_s: float
    batch: int
    workers: int = 1
    lease_changes: int = 0  # partitions that changed hands during the run (--workers K)
    events_per_s: float = 0.0
    processed_per_s: float = 0.0
    timers_per_s: float = 0.0
    wall_beyond_t_s: float = 0.0
    lateness_p50_ms: float = 0.0
    lateness_p99_ms: float = 0.0
    open_delay_max_ms: float = 0.0  # the latest open after its push was queued (the bench's pace; W1 means 0.5 s)
    peak_rss_mb: float = 0.0
    db_mb: float = 0.0
    events: int = 0  # carts and opens sent: the figures below are per event
    engine_cpu_ms_per_1k: float = 0.0  # thread CPU of the engine's turns (every worker's)
    process_cpu_ms_per_1k: float = 0.0  # the engine's process(es), less the bench's own threads
    postgres_cpu_ms_per_1k: float | None = None  # a PostgreSQL on this machine, less the bench's polling
    statements_per_event: float = 0.0
    rows_per_event: float = 0.0  # rows written
    load_avg_1m: float = 0.0  # the machine's, as the run ended
    correct: bool = False
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_bench(users: int, timeout: timedelta, db_url: str | None = None, via: str = "python",
              progress: Progress | None = None, batch: int | None = None, workers: int | None = None) -> BenchResult:
    """Run W1 once; `db_url` None means a fresh SQLite file in a temporary folder. With `workers`
    (PostgreSQL), through `journey serve --workers K`: what a team runs to use K cores."""
    progress = progress or (lambda *_: None)
    if workers is not None and not (db_url or "").startswith("postgresql"):
        raise InputError(f"--workers {workers}: workers share a PostgreSQL database: add --db postgresql+psycopg://...")
    via = "http" if workers is not None else via
    with tempfile.TemporaryDirectory(prefix="journey-bench-") as tmp:
        url = db_url or f"sqlite:///{tmp}/bench.db"
        prefix = f"b{uuid.uuid4().hex[:6]}u"
        postmaster = _load_profiles([url], users, prefix, progress)
        result = BenchResult(users, via, timeout.total_seconds(), batch or BATCH[via], workers or 1)
        if workers is not None:
            feed = _run_workers(url, Path(tmp), users, timeout, prefix, result, progress, postmaster)
        else:
            runner = _run_python if via == "python" else _run_http
            feed = runner(url, Path(tmp), users, timeout, prefix, result, progress, postmaster)
        _measure([url], users, timeout, prefix, feed, result)
    return result


def bench_policy() -> Policy:
    """The default policy without quiet hours: the bench measures the engine, not the time of day."""
    policy = load_policy()
    return policy.model_copy(update={"quiet_hours": policy.quiet_hours.model_copy(update={"categories": []})})


def _costs(result: BenchResult, spent: Spent, events: int, polling: float) -> None:
    """The run's costs per event; `polling`: what the bench's own completion poll cost PostgreSQL."""
    if spent.postgres_cpu is not None:
        spent = replace(spent, postgres_cpu=spent.postgres_cpu - polling)
    result.events = events
    for name, value in spent.per_event(events).items():
        setattr(result, name, value)
    result.load_avg_1m = round(os.getloadavg()[0], 2)


def _load_profiles(urls: Sequence[str], users: int, prefix: str, progress: Progress) -> int | None:
    """Each user's profile into the database; returns the local PostgreSQL server's process id,
    whose CPU the run reports (None: SQLite, or a server elsewhere)."""
    store = SqlStore(urls[0])
    try:
        backend = store.backend_pid()
        postmaster = postmaster_of(urls[0], backend) if backend else None  # while the backend lives
        for start in range(0, users, 10_000):
            ids = range(start, min(users, start + 10_000))
            with store.transaction() as tx:
                tx.prefetch([f"{prefix}{n}" for n in ids], datetime.fromtimestamp(0).astimezone())
                for n in ids:
                    tx.put_profile(w1_profile(n, prefix))
            progress("profiles", ids.stop, users)
    finally:
        store.close()
    return postmaster


def _run_python(url: str, tmp: Path, users: int, timeout: timedelta, prefix: str, result: BenchResult,
                progress: Progress, postmaster: int | None) -> Burst:
    """Runs W1 through `Server.accept`; returns the burst (when it started, when each open went)."""
    store = SqlStore(url)
    server = Server(store, [w1_journey(timeout)], bench_policy(), {"*": [FileProvider(tmp / "outbox.jsonl")]},
                    timer_interval=0.25)
    server.start()
    pushed = OutboxTail(tmp / "outbox.jsonl")
    try:
        clock = server.clock
        feed = Burst(users, result.batch, prefix, clock.now, lambda events: server.accept(events),
                     processed=lambda: server.backlog.dequeued, pushed=pushed)
        def spent() -> Spent:  # the process less the bench's own threads (this one, the devices'), but
            bench = time.thread_time() + feed.devices_cpu - sum(feed.sends_cpu)  # not the engine's turns on them
            return Spent(server.counters.cpu.seconds, time.process_time() - bench, postgres_cpu(postmaster),
                         store.stats.statements, store.stats.rows)

        before = spent()
        started = time.perf_counter()
        feed.run(progress)
        result.events_per_s = feed.events_per_s
        polling = _wait_done([url], users, timeout, prefix, started, result, progress)
        _costs(result, spent() - before, feed.sent, polling)
        backlog, counters = server.backlog, server.counters
        result.processed_per_s = backlog.dequeued / max(backlog.seconds, 1e-9)
        result.timers_per_s = counters.timers_fired / max(counters.timer_seconds, 1e-9)
        result.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        pushed.close()
        server.stop()
    return feed


def _at_most_every(seconds: float, read: Callable[[], T]) -> Callable[[], T]:
    """`read`, but asked of the server at most every `seconds` however often the bench looks."""
    last: list[Any] = [float("-inf"), None]

    def cached() -> T:
        if time.perf_counter() - last[0] >= seconds:
            last[1], last[0] = read(), time.perf_counter()
        return cast(T, last[1])

    return cached


def _run_http(url: str, tmp: Path, users: int, timeout: timedelta, prefix: str, result: BenchResult,
              progress: Progress, postmaster: int | None) -> Burst:
    """Runs W1 through a `journey serve` child, every batch with `Prefer: respond-async` (as the
    Python path uses `Server.accept`); returns the burst."""
    with serve(url, _files(tmp, timeout), tmp) as (base, pids):
        feed = _post_burst(base, url, users, timeout, prefix, result, progress, tmp / "outbox.jsonl",
                           processed=lambda scraped: int(scraped.get("journey_inbox_processed_total", 0)),
                           spent=lambda: _served_spent(base, pids[0], postmaster))
        final = metrics(base)
        result.processed_per_s = rate(final, "journey_inbox_processed_total", "journey_inbox_seconds_total")
        result.timers_per_s = rate(final, "journey_timers_fired_total", "journey_timer_sweep_seconds_total")
        result.peak_rss_mb = sum(peak_rss_of(pid) for pid in pids)
    return feed


def _run_workers(url: str, tmp: Path, users: int, timeout: timedelta, prefix: str, result: BenchResult,
                 progress: Progress, postmaster: int | None) -> Burst:
    """Runs W1 through `journey serve --workers K` on PostgreSQL. The workers split the users by
    partition, whichever of them a batch reaches, and each takes its own in its own order: the
    devices open each push once its user's cart is out of the inbox (`Burst`'s `unprocessed`).
    Any worker's /metrics reports each worker as of its last heartbeat (here every 0.5 s),
    whence the rates, read once the heartbeats have caught up with the totals; they add up: the
    workers run at once."""
    env = {"JOURNEY_PARTITION_LEASE_SECONDS": "2.5"}  # heartbeats every 0.5 s
    with serve(url, _files(tmp, timeout), tmp, workers=result.workers, env=env) as (base, pids):
        leases_before = _total(_wait_for_workers(base, result.workers), "journey_worker_lease_changes")
        feed = _post_burst(base, url, users, timeout, prefix, result, progress, tmp / "outbox.jsonl",
                           processed=None, spread=True, spent=lambda: _served_spent(base, pids[0], postmaster))
        final = _reported(base)
        result.lease_changes = int(_total(final, "journey_worker_lease_changes") - leases_before)
        result.processed_per_s = sum(_per_worker(final, "journey_worker_events_processed",
                                                 "journey_worker_events_seconds"))
        result.timers_per_s = sum(_per_worker(final, "journey_worker_timers_fired", "journey_worker_timer_seconds"))
        result.peak_rss_mb = sum(peak_rss_of(pid) for pid in pids)
    return feed


def _served_spent(base: str, parent: int, postmaster: int | None) -> Spent:
    """The totals of a `journey serve` child: its /metrics (every worker's), and its processes' CPU."""
    scraped = metrics(base)
    return Spent(scraped.get("journey_engine_cpu_seconds_total", 0.0), process_cpu([parent, *children_of(parent)]),
                 postgres_cpu(postmaster), int(scraped.get("journey_sql_statements_total", 0)),
                 int(scraped.get("journey_sql_rows_written_total", 0)))


def _wait_for_workers(base: str, workers: int, deadline: float = 60.0) -> dict[str, float]:
    """Until the K workers are all up (each has sent its heartbeat) and share the partitions out
    evenly, as a burst finds a cluster that has run a while. Their start-up is then not counted
    in the run's CPU, and no worker takes partitions over mid-burst: one that did took their
    queued events with them, its inbox was then over-full, and every batch posted to it (the
    devices' opens too) waited while it caught up. Returns the last scrape."""
    until = time.perf_counter() + deadline
    scraped: dict[str, float] = {}
    while time.perf_counter() < until:
        try:
            scraped = metrics(base)
        except httpx.HTTPStatusError:  # a worker still starting: look again
            scraped = {}
        if scraped.get("journey_workers_live", 0) >= workers and _shared_evenly(scraped, workers):
            break
        time.sleep(0.05)
    return scraped


def _shared_evenly(scraped: dict[str, float], workers: int) -> bool:
    """Whether every one of the K workers reports a share of the partitions, within one of the others'."""
    shares = [v for k, v in scraped.items() if k.startswith("journey_worker_partitions{") and v > 0]
    return len(shares) >= workers and max(shares) - min(shares) <= 1


def _reported(base: str, deadline: float = 10.0) -> dict[str, float]:
    """A scrape once every worker's heartbeat has reported all it did (the totals of the scrape,
    live, are the measure), or the last one after `deadline` seconds."""
    until = time.perf_counter() + deadline
    while True:
        scraped = metrics(base)
        caught_up = all(_total(scraped, reported) >= scraped.get(live, 0) for reported, live in (
            ("journey_worker_timers_fired", "journey_timers_fired_total"),
            ("journey_worker_events_processed", "journey_inbox_processed_total")))
        if caught_up or time.perf_counter() >= until:
            return scraped
        time.sleep(0.1)


def _total(scraped: dict[str, float], family: str) -> float:
    return sum(v for k, v in scraped.items() if k.startswith(family + "_total{"))


def _files(tmp: Path, timeout: timedelta) -> Path:
    """The W1 journey in a journeys folder, and a policy without quiet hours beside it."""
    journeys = tmp / "journeys"
    journeys.mkdir()
    (journeys / "w1.yaml").write_text(w1_yaml(timeout), encoding="utf-8")
    (tmp / "policy.yaml").write_text("quiet_hours: {categories: []}\n", encoding="utf-8")
    return journeys


def _post_burst(base: str, url: str, users: int, timeout: timedelta, prefix: str, result: BenchResult,
                progress: Progress, outbox: Path, processed: Callable[[dict[str, float]], int] | None,
                spent: Callable[[], Spent], spread: bool = False) -> Burst:
    """The burst over HTTP, then the wait for W1's last SMS; returns the burst.
    `outbox`: the file provider's, whose pushes the devices watch too; `processed`: the count of
    processed carts in a scrape of /metrics, or None: the devices ask the database which of their
    users' carts still wait (`Burst`), as workers take users in their own order, and what that
    costs PostgreSQL is left out of the run's figure; `spread`: a connection per request (see
    `poster`); `spent`: the server's totals now."""
    clock = SystemClock()
    watch = SqlStore(url) if processed is None else None
    try:
        with poster(base, spread) as post, poster(base, spread) as post_opens, OutboxTail(outbox) as pushed:
            scrape = _at_most_every(0.05, lambda: metrics(base))  # the loader, the devices and what they receive
            count = (lambda: processed(scrape())) if processed is not None else None
            feed = Burst(users, result.batch, prefix, clock.now, post, request_body, processed=count,
                         send_opens=post_opens, pushed=pushed,
                         unprocessed=watch.waiting_of if watch is not None else None)
            before = spent()
            started = time.perf_counter()
            feed.run(progress)
        watching = process_cpu([pid]) if watch is not None and (pid := watch.backend_pid()) else 0.0
    finally:
        if watch is not None:
            watch.close()
    result.events_per_s = feed.events_per_s
    polling = _wait_done([url], users, timeout, prefix, started, result, progress)
    _costs(result, spent() - before, feed.sent, polling + watching)
    return feed


def _per_worker(scraped: dict[str, float], count: str, seconds: str) -> list[float]:
    """Each worker's count / seconds (a rate while busy), from the labelled samples."""
    spent = {k.partition("{")[2]: v for k, v in scraped.items() if k.startswith(seconds + "_total{")}
    return [v / spent[k.partition("{")[2]] for k, v in scraped.items()
            if k.startswith(count + "_total{") and spent.get(k.partition("{")[2])]


def _wait_done(urls: Sequence[str], users: int, timeout: timedelta, prefix: str, started: float, result: BenchResult,
               progress: Progress) -> float:
    """Poll the database until every expected SMS is out of the outbox (or a generous deadline).
    The counts scan the bench's messages, so the poll backs off as they grow: it takes at most
    a tenth of a core from the server it measures. When it notices does not change the figures:
    the wall time beyond T set here stands only if the run fails; otherwise `_measure` reads
    the exact one from the messages. Returns the CPU seconds the poll cost a local PostgreSQL
    (its connection's server process), which the run's figure leaves out."""
    expected = sum(1 for n in range(users) if not opens(n))
    deadline = started + timeout.total_seconds() + 60 + users / 1000
    stores = [SqlStore(url) for url in urls]
    try:
        while time.perf_counter() < deadline:
            before = time.perf_counter()
            counts = [store.delivery_progress(prefix) for store in stores]
            sms, pending = sum(c[0] for c in counts), sum(c[1] for c in counts)
            progress("timers", sms, expected)
            if sms >= expected and pending == 0:
                break
            time.sleep(max(0.1, 9 * (time.perf_counter() - before)))
        result.wall_beyond_t_s = time.perf_counter() - started - timeout.total_seconds()
        return process_cpu(pid for pid in (store.backend_pid() for store in stores) if pid)
    finally:
        for store in stores:
            store.close()


def _measure(urls: Sequence[str], users: int, timeout: timedelta, prefix: str, feed: Burst,
             result: BenchResult) -> None:
    """Checks W1 and reads the figures the messages hold: timer lateness, and the wall time
    beyond T to the moment the last SMS was handed to the provider (its `status_at`), which
    is exact where the completion poll is only as fine as its interval. Checks the bench too:
    an open it sent once its push's T had run out rightly got the SMS, and says so."""
    rows: list[Any] = []
    for url in urls:
        store = SqlStore(url)
        try:
            rows += store.message_outcomes(prefix)
            result.db_mb += store.size_mb()
        finally:
            store.close()
    problems = check_w1(users, [(r[0], r[1]) for r in rows], prefix)
    unsent = sum(1 for r in rows if r[3] != "sent")
    if unsent:
        problems.append(f"{unsent} messages were not handed to the provider")
    pushed = {r[0]: r[2] for r in rows if r[1] == "push"}
    problems += _late_opens(feed.opened, pushed, timeout, result)
    late = sorted((r[2] - pushed[r[0]] - timeout).total_seconds() * 1000 for r in rows
                  if r[1] == "sms" and r[0] in pushed)
    handed = [r[4] for r in rows if r[1] == "sms" and r[3] == "sent" and r[4] is not None]
    if handed and not problems:
        result.wall_beyond_t_s = (max(handed) - feed.started_at - timeout).total_seconds()
    if late:
        result.lateness_p50_ms = round(late[len(late) // 2], 1)
        result.lateness_p99_ms = round(late[min(len(late) - 1, int(len(late) * 0.99))], 1)
    result.problems = problems
    result.correct = not problems


def _late_opens(opened: dict[str, datetime], pushed: dict[str, datetime], timeout: timedelta,
                result: BenchResult) -> list[str]:
    """How long after its push each open was sent (the bench means 0.5 s); a problem of the
    bench's own if any went once T had run out: the engine was right to send those SMS."""
    delays = [(at - pushed[user], user) for user, at in opened.items() if user in pushed]
    if not delays:
        return []
    result.open_delay_max_ms = round(max(delays)[0].total_seconds() * 1000, 1)
    late = sorted(user for delay, user in delays if delay >= timeout)
    return [f"the bench sent {len(late)} opens after their push's {timeout.total_seconds()} s had run out "
            f"(e.g. {late[0]}): it fell behind, and those SMS were due"] if late else []
