"""`journey bench --audience N`: an audience run over N profiles (every other one matching: each
match gets one push) against the real SQLite store, sweeps and dispatcher, while another journey's
2-second timers keep coming due. Measured: profiles entered per second, peak RSS, and how late the
concurrent timers fired; checked: the run finished with every matching profile entered once.
"""

from __future__ import annotations

import resource
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from channels import Profile
from channels.providers import FileProvider
from engine.bench.runner import bench_policy
from engine.compiler import load_text
from engine.events import Event
from engine.host.server import Server
from engine.stores.sql import SqlStore

BROADCAST = "bench-broadcast"
TIMERS = "bench-timer"
TIMER_WAIT = timedelta(seconds=2)
TIMER_EVERY = 0.25  # seconds between the concurrent timers started
LOAD_CHUNK = 10_000
Progress = Callable[[str, int, int], None]

JOURNEYS = (f"""
id: {BROADCAST}
category: transactional
trigger:
  at: "2099-12-31T00:00:00Z"  # never by itself: the bench starts its run by hand
  audience: "profile.attributes.segment == 'even'"
steps:
  - {{id: hello, type: send, message: hello, channels: [push]}}
messages:
  hello:
    push: {{title: "Hello", body: "Run {{{{ event.properties.run_id }}}}"}}
""", f"""
id: {TIMERS}
category: transactional
trigger: {{event: bench.timer}}
steps:
  - {{id: pause, type: wait, duration: {int(TIMER_WAIT.total_seconds())}s}}
""")


@dataclass
class AudienceResult:
    profiles: int
    matching: int
    entered: int = 0
    run_seconds: float = 0.0
    entered_per_s: float = 0.0
    profiles_per_s: float = 0.0
    peak_rss_mb: float = 0.0
    timers: int = 0
    timer_lateness_p50_ms: float = 0.0
    timer_lateness_max_ms: float = 0.0
    db_mb: float = 0.0
    correct: bool = False
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_audience_bench(profiles: int, db_url: str | None = None, progress: Progress | None = None,
                       ) -> AudienceResult:
    """One run over `profiles` profiles in a fresh SQLite file (or `db_url`), measured and checked."""
    progress = progress or (lambda *_: None)
    result = AudienceResult(profiles, (profiles + 1) // 2)
    with tempfile.TemporaryDirectory(prefix="journey-bench-") as tmp:
        url = db_url or f"sqlite:///{tmp}/bench.db"
        _load(url, profiles, progress)
        store = SqlStore(url)
        server = Server(store, [load_text(text, f"{n}.yaml") for n, text in enumerate(JOURNEYS)],
                        bench_policy(), {"*": [FileProvider(Path(tmp) / "outbox.jsonl")]}, timer_interval=0.25)
        server.start()
        try:
            timers = _Timers(server)
            timers.start()
            time.sleep(TIMER_WAIT.total_seconds())  # the first timers come due as the run starts
            run_id = server.start_run(BROADCAST).run_id
            finished = _wait_finished(server, run_id, profiles, progress)
            timers.stop()
            result.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            _measure(server, store, finished, timers.users, result)
            result.db_mb = store.size_mb()
        finally:
            server.stop()
    return result


def _load(url: str, count: int, progress: Progress) -> None:
    """The profiles, written before the server starts (it reads them cold, as after a restart)."""
    store = SqlStore(url, cache=False)
    try:
        for start in range(0, count, LOAD_CHUNK):
            users = [f"a{n:07d}" for n in range(start, min(count, start + LOAD_CHUNK))]
            with store.transaction() as tx:
                tx.prefetch(users, datetime.fromtimestamp(0, UTC))
                for n, user in enumerate(users, start):
                    tx.put_profile(Profile(user, "UTC", push_token=f"tok-{n}",
                                           attributes={"segment": "even" if n % 2 == 0 else "odd"}))
            progress("profiles", start + len(users), count)
    finally:
        store.close()


class _Timers(threading.Thread):
    """Starts another journey's 2-second wait every 0.25 s, one new user each, until stopped."""

    def __init__(self, server: Server) -> None:
        super().__init__(name="bench-timers", daemon=True)
        self.server = server
        self.users: list[str] = []
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(TIMER_EVERY):
            user = f"t{len(self.users):06d}"
            self.server.ingest([Event("bench.timer", user, self.server.clock.now(), {}, f"timer-{user}")])
            self.users.append(user)

    def stop(self) -> None:
        self._done.set()
        self.join()
        deadline = time.monotonic() + TIMER_WAIT.total_seconds() + 10  # the last ones come due
        while time.monotonic() < deadline and self.server.store.next_due() is not None:
            time.sleep(0.1)


def _wait_finished(server: Server, run_id: str, profiles: int, progress: Progress) -> Any:
    deadline = time.monotonic() + 120 + profiles / 1000
    while time.monotonic() < deadline:
        run = server.store.runs.get_run(run_id)
        if run is not None:
            progress("run", run.profiles, profiles)
            if not run.working:
                return run
        time.sleep(0.1)
    return server.store.runs.get_run(run_id)


def _measure(server: Server, store: SqlStore, run: Any, timer_users: list[str], result: AudienceResult) -> None:
    if run is None or run.working:
        result.problems.append(f"the run did not finish: {run.view() if run else 'not found'}")
        return
    result.entered = run.entered
    result.run_seconds = round((run.finished_at - run.started_at).total_seconds(), 3)
    result.entered_per_s = round(run.entered / max(result.run_seconds, 1e-9), 1)
    result.profiles_per_s = round(run.profiles / max(result.run_seconds, 1e-9), 1)
    entries, users = store.entries_of(BROADCAST)
    if (run.matched, run.entered, entries, users) != (result.matching,) * 4:
        result.problems.append(f"expected {result.matching} matched, entered, instances and people; got "
                               f"{run.matched}, {run.entered}, {entries} and {users}")
    fired = [_fired(server, user) for user in timer_users]
    late = sorted(late for due, late in fired if run.started_at <= due <= run.finished_at)  # due while it ran
    if late:
        result.timers = len(late)
        result.timer_lateness_p50_ms = round(late[len(late) // 2] * 1000, 1)
        result.timer_lateness_max_ms = round(late[-1] * 1000, 1)
    result.correct = not result.problems


def _fired(server: Server, user: str) -> tuple[datetime, float]:
    """When the user's timer was due (entry + 2 s), and how late it fired (when the instance ended,
    at once after its wait); not fired: infinitely late."""
    (instance,) = server.store.views.instances_for_user(user)
    due = instance.entered_at + TIMER_WAIT
    return due, (instance.ended_at - due).total_seconds() if instance.ended_at is not None else float("inf")
