"""kill -9 aimed at the moment the outbox starts draining (its first line), or a little later (its
300th: the dispatcher has learnt its rate and sends in bigger groups), then a restart on the same
database and outbox file: every one of 2,000 users gets exactly one message within 2 minutes,
except at most the group of sends in flight at the kill (`unknown`: in doubt, never re-sent,
never `failed`).

The client behaves as a client should: it posts the 2,000 events with `Prefer: respond-async`
in batches while the server drains, and after the restart posts them all again (same ids): what
was accepted before the kill comes back as duplicates, what the kill cut off goes in now.

The restarted server takes over the killed one's claims only when their lease runs out; the
test sets it to 5 s (JOURNEY_OUTBOX_LEASE_SECONDS) rather than the default 60 s.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chaos.conftest import MessageRows, load_profiles, ping, user_ids
from tests.server.conftest import API_KEYS, StartServer, metric, server_env, wait_for_sweeps, wait_until

USERS = 2_000
BATCH = 100
LEASE_SECONDS = 5
IN_DOUBT_MOST = 32  # engine.host.dispatcher.IN_DOUBT_MOST: one group of sends is recorded at a time
WITHIN = 120.0  # seconds from the restart until every user has their message
ASYNC = {"Prefer": "respond-async"}


class Poster(threading.Thread):
    """Posts the batches one after another until they are done or the server goes away."""

    def __init__(self, base_url: str, batches: list[list[dict[str, Any]]]) -> None:
        super().__init__(name="poster", daemon=True)
        self.base_url = base_url
        self.batches = batches
        self.acked = 0  # batches answered 202: their events are durable
        self.stopped_by: str | None = None

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {API_KEYS[0]}", **ASYNC}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=10) as client:
            for batch in self.batches:
                try:
                    reply = client.post("/v1/events", json={"events": batch})
                except httpx.TransportError as exc:
                    self.stopped_by = f"{type(exc).__name__}"
                    return
                if reply.status_code != 202:
                    self.stopped_by = f"{reply.status_code} {reply.text[:200]}"
                    return
                self.acked += 1


def delivered_at_least(outbox: Path, lines: int) -> bool:
    return outbox.exists() and outbox.read_bytes().count(b"\n") >= lines


@pytest.mark.parametrize("kill_at", [1, 300], ids=["first-line", "300-lines"])
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kill_9_as_the_outbox_starts_draining_loses_nothing_and_sends_nothing_twice(
        backend: str, kill_at: int, request: pytest.FixtureRequest, tmp_path: Path, chaos_journeys: Path,
        start_server: StartServer, message_rows: Callable[[str], MessageRows]) -> None:
    url = f"sqlite:///{tmp_path / 'journey.db'}" if backend == "sqlite" \
        else str(request.getfixturevalue("postgres_fresh_db_url"))
    users = user_ids(USERS)
    load_profiles(url, users)
    events = [ping(user, n) for n, user in enumerate(users)]
    batches = [events[i:i + BATCH] for i in range(0, USERS, BATCH)]
    env = {**server_env(), "JOURNEY_OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS)}
    rows = message_rows(url)

    first = start_server(db=url, name="before-kill", env=env)
    poster = Poster(first.base_url, batches)
    poster.start()
    wait_until(lambda: delivered_at_least(first.outbox, kill_at), timeout=60, interval=0.002,
               what=f"{kill_at} messages delivered")
    first.kill()
    poster.join(timeout=15)
    assert not poster.is_alive()
    at_kill = first.outbox_lines()
    states_at_kill = Counter(row["dispatch"] for row in rows())

    second = start_server(db=url, name="after-kill", env=env)
    restarted = time.monotonic()
    accepted = duplicates = 0
    for batch in batches:
        reply = second.client.post("/v1/events", json={"events": batch}, headers=ASYNC)
        assert reply.status_code == 202, reply.text
        body = reply.json()
        assert body["rejected"] == []
        accepted, duplicates = accepted + body["accepted"], duplicates + body["duplicates"]
    assert accepted + duplicates == USERS
    assert duplicates >= poster.acked * BATCH, "an event answered 202 before the kill was lost"

    def settled() -> list[dict[str, Any]] | None:
        found = rows()
        done = {r["user_id"] for r in found if r["dispatch"] in ("sent", "unknown", "failed")}
        return found if len(done) == USERS else None

    wait_until(settled, timeout=WITHIN, interval=0.5, what="every user's message sent or in doubt")
    took = time.monotonic() - restarted
    wait_for_sweeps("inbox", "outbox", on=[second])  # a late duplicate would show by then
    final = rows()
    lines = second.outbox_lines()

    delivered = Counter(line["message_id"] for line in lines)
    assert [m for m, n in delivered.items() if n > 1] == [], "a message was delivered twice"
    per_user = Counter(r["user_id"] for r in final)
    assert set(per_user) == set(users)
    assert [u for u, n in per_user.items() if n != 1] == [], "a user has more than one message"
    states = Counter(r["dispatch"] for r in final)
    assert states["failed"] == 0, "a message was recorded failed"
    assert set(states) <= {"sent", "unknown"}, states
    unknown = {r["message_id"] for r in final if r["dispatch"] == "unknown"}
    assert len(unknown) <= IN_DOUBT_MOST
    sent = {r["message_id"] for r in final if r["dispatch"] == "sent"}
    assert sent <= set(delivered), "a message recorded sent is not in the outbox"
    assert set(delivered) <= sent | unknown, "the outbox holds a message the database does not know"
    delivered_users = {line["user_id"] for line in lines}
    in_doubt_users = {r["user_id"] for r in final if r["dispatch"] == "unknown"}
    lost = set(users) - delivered_users - in_doubt_users
    assert lost == set()
    assert metric(second, "journey_messages_in_doubt_total") == len(unknown)

    in_doubt_delivered = len(unknown & set(delivered))
    print(f"\n[chaos kill -9 {backend}, aimed at line {kill_at}] killed after {len(at_kill)} lines in the outbox, "
          f"{poster.acked}/{len(batches)} batches acknowledged ({poster.stopped_by or 'all posted'}); "
          f"states at the kill {dict(states_at_kill)}; after the restart everything settled in {took:.1f} s: "
          f"delivered {len(delivered_users)}, in doubt {len(unknown)} "
          f"({in_doubt_delivered} of them in the outbox), lost {len(lost)}")
