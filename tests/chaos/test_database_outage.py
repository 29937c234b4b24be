"""PostgreSQL stopped for 10 s under a burst of events (queued and processed at once): meanwhile
every request answers 503 problem+json with Retry-After and /readyz 503, afterwards /readyz 200
again; every event answered 202 is processed, an event answered 503 goes in when the client
retries it, no message is sent twice, and the outage costs fewer than 20 lines of log.

The PostgreSQL server is the test's own (`own_postgres`), so stopping it disturbs no other test.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.chaos.conftest import MessageRows, load_profiles, ping, user_ids
from tests.conftest import PostgresServer
from tests.server.conftest import API_KEYS, StartServer, wait_for_sweeps, wait_until

USERS = 4_000  # more than the burst can use up
PER_REQUEST = 5
PAUSE = 0.05  # seconds between one sender's requests
OUTAGE = 10.0  # seconds PostgreSQL stays stopped
AFTER = 3.0  # seconds of burst, and of log, counted after /readyz is 200 again
MOST_LOG_LINES = 20


@dataclass(frozen=True)
class Reply:
    sent: float  # time.monotonic() when the request went
    at: float  # and when the answer came
    users: tuple[str, ...]
    queued: bool  # Prefer: respond-async
    status: int  # 0: no answer (transport error)
    headers: dict[str, str]
    body: str


class Burst:
    """Two senders, one posting with `Prefer: respond-async` and one without, PER_REQUEST new users
    an event each per request, until `stop()`; every answer is kept."""

    def __init__(self, base_url: str, users: list[str]) -> None:
        self.base_url = base_url
        self._users: Iterator[str] = iter(users)
        self._take = threading.Lock()
        self._stop = threading.Event()
        self.replies: list[Reply] = []
        self._threads = [threading.Thread(target=self._send, args=(queued,), daemon=True, name=f"burst-{queued}")
                         for queued in (True, False)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
            assert not thread.is_alive(), "a request hung for more than 30 s"

    def _next_users(self) -> tuple[str, ...]:
        with self._take:
            return tuple(itertools.islice(self._users, PER_REQUEST))

    def _send(self, queued: bool) -> None:
        headers = {"Authorization": f"Bearer {API_KEYS[0]}"} | ({"Prefer": "respond-async"} if queued else {})
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=20) as client:
            while not self._stop.is_set() and (users := self._next_users()):
                sent = time.monotonic()
                try:
                    answer = client.post("/v1/events", json={"events": [ping(u) for u in users]})
                    reply = Reply(sent, time.monotonic(), users, queued, answer.status_code, dict(answer.headers),
                                  answer.text)
                except httpx.TransportError as exc:
                    reply = Reply(sent, time.monotonic(), users, queued, 0, {}, repr(exc))
                self.replies.append(reply)
                self._stop.wait(PAUSE)


class Readiness:
    """GET `path` (/readyz by default) every 0.1 s (no key: it is open), each answer kept with its time."""

    def __init__(self, base_url: str, path: str = "/readyz") -> None:
        self.base_url = base_url
        self.path = path
        self.seen: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True, name=path)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def ready_since(self, since: float) -> bool:
        return any(at > since and status == 200 for at, status in self.seen)

    def _poll(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=20) as client:
            while not self._stop.is_set():
                try:
                    status = client.get(self.path).status_code
                except httpx.TransportError:
                    status = 0
                self.seen.append((time.monotonic(), status))
                self._stop.wait(0.1)


ROUTINE = (" info uvicorn.access ", " info journey.decisions ", " info journey.dispatcher ", " info journey.sweeps ",
           " info journey.ingest ", " debug ")
"""What the server logs in normal operation at its default level: a line per request, decision,
send, sweep and batch. The outage's cost is everything else: errors, warnings, tracebacks."""


def log_lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines()


def outage_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if not any(kind in line for kind in ROUTINE)]


def test_postgresql_stopped_for_10_s_during_a_burst(own_postgres: PostgresServer, chaos_journeys: Path,
                                                    start_server: StartServer,
                                                    message_rows: Callable[[str], MessageRows]) -> None:
    url = own_postgres.url("chaos")
    users = user_ids(USERS, prefix="o")
    load_profiles(url, users)
    rows = message_rows(url)
    server = start_server(db=url, name="outage")
    burst, readiness = Burst(server.base_url, users), Readiness(server.base_url)
    burst.start()
    readiness.start()

    wait_until(lambda: len(server.outbox_lines()) >= 20, timeout=20, what="the burst under way")
    logged_before = len(log_lines(server.log))
    stopped = time.monotonic()
    own_postgres.halt()
    wait_until(lambda: any(r.at > stopped and r.status == 503 for r in burst.replies), timeout=OUTAGE,
               interval=0.05, what="a 503 while PostgreSQL is stopped")
    time.sleep(max(0.0, stopped + OUTAGE - time.monotonic()))  # the outage itself: 10 s of real time
    restarting = time.monotonic()
    own_postgres.restart()
    restarted = time.monotonic()
    wait_until(lambda: readiness.ready_since(restarted), timeout=30, interval=0.05, what="/readyz 200 again")
    ready = time.monotonic()
    wait_until(lambda: time.monotonic() > ready + AFTER and any(r.at > ready + AFTER and r.status == 202
                                                                 for r in burst.replies),
               timeout=AFTER + 20, what="events accepted again after the outage")
    outage_log = outage_lines(log_lines(server.log)[logged_before:])
    burst.stop()
    readiness.stop()

    # what the clients saw
    statuses = Counter((r.queued, r.status) for r in burst.replies)
    assert set(statuses) <= {(q, s) for q in (True, False) for s in (202, 503)}, statuses
    unavailable = [r for r in burst.replies if r.status == 503]
    assert {r.queued for r in unavailable} == {True, False}, "both ways in answer 503 during the outage"
    for reply in unavailable:
        assert reply.headers.get("retry-after", "").isdigit(), reply.headers
        assert reply.headers["content-type"].startswith("application/problem+json"), reply.headers
        assert stopped <= reply.at, "a 503 before PostgreSQL was stopped"
    late = [r for r in unavailable if r.sent > ready + 1.0]
    assert late == [], f"503s to requests sent more than 1 s after /readyz was 200 again: {late[:3]}"
    during = [status for at, status in readiness.seen if stopped + 1.0 < at < restarting]
    assert during and set(during) == {503}, Counter(during)
    assert readiness.seen[-1][1] == 200

    # the client retries what was refused; every event is then in, each user pinged once
    refused = [u for r in unavailable for u in r.users]
    for start in range(0, len(refused), 200):
        retried = server.client.post("/v1/events", json={"events": [ping(u) for u in refused[start:start + 200]]})
        assert retried.status_code == 202, retried.text
        assert retried.json()["rejected"] == []
    posted = {u for r in burst.replies for u in r.users}

    def all_sent() -> list[dict[str, Any]] | None:
        found = rows()
        return found if {r["user_id"] for r in found if r["dispatch"] == "sent"} == posted else None

    wait_until(all_sent, timeout=30, interval=0.25, what="every posted user's push sent")
    wait_for_sweeps("inbox", "outbox", on=[server])  # a late duplicate would show by then
    assert server.client.get("/healthz").status_code == 200
    final = rows()
    assert Counter(r["user_id"] for r in final) == Counter(posted), "a user without exactly one message"
    assert {r["dispatch"] for r in final} == {"sent"}
    lines = server.outbox_lines()
    assert [m for m, n in Counter(line["message_id"] for line in lines).items() if n > 1] == []
    assert Counter(line["user_id"] for line in lines) == Counter(posted)
    for user in sorted(posted)[:: max(1, len(posted) // 20)]:  # a sample through the API too
        [instance] = server.client.get(f"/v1/users/{user}/instances").json()["instances"]
        assert instance["status"] == "completed"

    assert len(outage_log) < MOST_LOG_LINES, "\n".join(outage_log)
    accepted = sum(len(r.users) for r in burst.replies if r.status == 202)
    print(f"\n[chaos outage] {len(burst.replies)} requests: {dict(statuses)} (queued, status); "
          f"{accepted} events accepted at once, {len(refused)} refused and retried, {len(posted)} users pinged "
          f"once each; /readyz {dict(Counter(s for _, s in readiness.seen))}, ready again "
          f"{ready - restarted:.1f} s after the restart; {len(outage_log)} log lines for the outage:\n"
          + "\n".join(outage_log))


BACKLOG = 1_000


def test_postgresql_stopped_as_the_outbox_drains_a_backlog(own_postgres: PostgresServer, chaos_journeys: Path,
                                                           start_server: StartServer,
                                                           message_rows: Callable[[str], MessageRows]) -> None:
    """The stop lands while the dispatcher works through 1,000 messages: the group it had handed
    to the provider is recorded `sent` once the database is back (the process knows what it sent:
    nothing is left in doubt), and the rest of its claim goes at once, not when the 60 s lease
    of a crashed dispatcher would run out."""
    url = own_postgres.url("chaos")
    users = user_ids(BACKLOG, prefix="b")
    load_profiles(url, users)
    rows = message_rows(url)
    server = start_server(db=url, name="drain-outage")
    reply = server.client.post("/v1/events", json={"events": [ping(u) for u in users]}, timeout=60)
    assert reply.status_code == 202 and reply.json()["accepted"] == BACKLOG, reply.text
    wait_until(lambda: server.outbox.exists() and server.outbox.stat().st_size > 0, timeout=20, interval=0.002,
               what="the drain under way")
    own_postgres.halt()
    at_stop = len(server.outbox_lines())
    wait_until(lambda: server.client.get("/readyz").status_code == 503, timeout=10, what="/readyz 503")
    own_postgres.restart()
    restarted = time.monotonic()
    wait_until(lambda: {r["dispatch"] for r in rows()} == {"sent"} and len(rows()) == BACKLOG, timeout=15,
               interval=0.25, what="every message of the backlog sent, none in doubt, none waiting for a lease")
    took = time.monotonic() - restarted
    wait_for_sweeps("outbox", on=[server])
    lines = server.outbox_lines()
    assert len(lines) == BACKLOG
    assert Counter(line["user_id"] for line in lines) == Counter(users)
    print(f"\n[chaos drain outage] PostgreSQL stopped with {at_stop} of {BACKLOG} messages in the outbox file; "
          f"all {BACKLOG} recorded sent {took:.1f} s after the restart, each delivered once")


def test_healthz_stays_200_through_a_10_s_postgresql_stop(own_postgres: PostgresServer, chaos_journeys: Path,
                                                          start_server: StartServer) -> None:
    """Liveness is not readiness: while PostgreSQL is stopped for 10 s under a trickle of events
    (every sweep failing meanwhile), /readyz answers 503 and /healthz stays 200 throughout, so a
    liveness probe restarts nothing; it said 503 two seconds into the outage before."""
    url = own_postgres.url("chaos")
    users = user_ids(400, prefix="h")
    load_profiles(url, users)
    server = start_server(db=url, name="liveness")
    burst = Burst(server.base_url, users)
    health, readiness = Readiness(server.base_url, "/healthz"), Readiness(server.base_url)
    burst.start()
    health.start()
    readiness.start()
    wait_until(lambda: any(r.status == 202 for r in burst.replies), timeout=20, what="events accepted")
    stopped = time.monotonic()
    own_postgres.halt()
    wait_until(lambda: any(at > stopped + 1 and status == 503 for at, status in readiness.seen), timeout=OUTAGE,
               what="/readyz 503 while PostgreSQL is stopped")
    time.sleep(max(0.0, stopped + OUTAGE - time.monotonic()))  # the outage itself: 10 s of real time
    restarting = time.monotonic()
    own_postgres.restart()
    wait_until(lambda: readiness.ready_since(time.monotonic() - 0.5), timeout=30, interval=0.05,
               what="/readyz 200 again")
    burst.stop()
    health.stop()
    readiness.stop()
    during = [status for at, status in health.seen if stopped < at < restarting]
    assert len(during) > 30, "/healthz was hardly polled during the outage"
    assert Counter(status for _, status in health.seen) == {200: len(health.seen)}
    assert {status for at, status in readiness.seen if stopped + 1 < at < restarting} == {503}
    assert server.client.get("/healthz").status_code == 200
