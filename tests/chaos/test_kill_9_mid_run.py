"""kill -9 in the middle of an audience run over 50,000 profiles, then a restart on the same SQLite
file: the run goes on from the last chunk that committed and finishes, and every matching profile
(25,000, every other one) is entered exactly once, with exactly one message; no one else is.

The journey is a one-off `at` a few seconds ahead, deployed to a running server by a reload (as a
broadcast is deployed), so a server slow to start on a busy machine cannot let the instant pass
before the journey is loaded; the test kills the server once the run has looked at 5,000 profiles
and has not finished."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from channels import Profile
from engine.events import format_time
from engine.stores.sql import SqlStore
from tests.chaos.conftest import MessageRows
from tests.server.conftest import ServerProcess, StartServer, wait_until

PROFILES = 50_000
AHEAD = timedelta(seconds=5)  # from writing the journey to its run: a reload answers well within it
BROADCAST = """\
id: chaos-broadcast
category: transactional
trigger:
  at: "{at}"
  audience: "profile.attributes.segment == 'even'"
steps:
  - {{id: ping, type: send, message: ping, channels: [push]}}
messages:
  ping:
    push: {{title: "Broadcast", body: "{{{{ event.properties.run_id }}}}"}}
"""


def load_audience(url: str) -> set[str]:
    """50,000 profiles with a push token, written before any server runs; returns the even ones."""
    store = SqlStore(url, cache=False)
    users = [f"a{n:06d}" for n in range(PROFILES)]
    try:
        for start in range(0, PROFILES, 10_000):
            with store.transaction() as tx:
                chunk = users[start:start + 10_000]
                tx.prefetch(chunk, datetime.fromtimestamp(0, UTC))
                for user in chunk:
                    segment = "even" if int(user[1:]) % 2 == 0 else "odd"
                    tx.put_profile(Profile(user, "UTC", push_token=f"tok-{user}", attributes={"segment": segment}))
    finally:
        store.close()
    return {u for u in users if int(u[1:]) % 2 == 0}


def the_run(server: ServerProcess) -> dict[str, Any] | None:
    runs = server.client.get("/v1/journeys/chaos-broadcast/runs").json()["runs"]
    return runs[0] if runs else None


def test_kill_9_in_the_middle_of_a_run_of_50000_profiles_enters_everyone_matching_exactly_once(
        tmp_path: Path, journeys_dir: Path, start_server: StartServer,
        message_rows: Callable[[str], MessageRows]) -> None:
    url = f"sqlite:///{tmp_path / 'journey.db'}"
    matching = load_audience(url)
    first = start_server(db=url, name="before-kill")
    at = datetime.now(UTC) + AHEAD  # a real server on the wall clock
    (journeys_dir / "chaos-broadcast.yaml").write_text(BROADCAST.format(at=format_time(at)), encoding="utf-8")
    reloaded = first.client.post("/v1/journeys/reload")
    assert reloaded.status_code == 200 and "chaos-broadcast" in reloaded.text, reloaded.text
    assert datetime.now(UTC) < at, "the reload took too long: the at instant passed before the journey was loaded"

    at_kill = wait_until(lambda: (run := the_run(first)) is not None and run["profiles"] >= 5_000 and run,
                         timeout=AHEAD.total_seconds() + 60, interval=0.02, what="the run to pass 5,000 profiles")
    first.kill()
    assert at_kill["status"] == "running" and at_kill["profiles"] < PROFILES, at_kill

    second = start_server(db=url, name="after-kill")
    restarted = time.monotonic()
    done = wait_until(lambda: (run := the_run(second)) is not None and run["status"] == "finished" and run,
                      timeout=180, interval=0.2, what="the run to finish after the restart")
    took = time.monotonic() - restarted

    assert (done["profiles"], done["matched"], done["entered"], done["skipped"]) == \
        (PROFILES, len(matching), len(matching), {}), done
    assert done["run_id"] == at_kill["run_id"] and len(second.client.get(
        "/v1/journeys/chaos-broadcast/runs").json()["runs"]) == 1
    per_user = Counter(row["user_id"] for row in message_rows(url)())
    assert set(per_user) == matching, "a matching profile was missed, or another one entered"
    assert [u for u, n in per_user.items() if n != 1] == [], "a profile was entered twice"
    print(f"\n[kill -9 mid-run] killed at {at_kill['profiles']:,} of {PROFILES:,} profiles "
          f"({at_kill['entered']:,} entered); after the restart the run finished in {took:.1f} s")
