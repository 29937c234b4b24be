"""Audience runs through the HTTP API, on the real `Server` with a virtual clock: a one-off `at` run
and a weekly schedule start at their instants, `POST /v1/journeys/{id}/runs` starts one now, and
`GET .../runs[/{run_id}]` shows what each did. Missed instants after downtime run once, late."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.clock import VirtualClock
from engine.events import format_time
from tests.server.conftest import T0, LocalServer, StartLocal

BROADCAST = """\
id: broadcast
name: Broadcast
category: transactional
trigger:
  at: "{at}"
  audience: "profile.attributes.plan == 'trial'"
steps:
  - {{id: hello, type: send, message: hello, channels: [push]}}
messages:
  hello:
    push:
      title: "Hello {{{{ profile.attributes.first_name }}}}"
      body: "{{{{ event.type }}}} {{{{ event.properties.run_id }}}}"
"""

WEEKLY = """\
id: weekly
category: transactional
trigger:
  schedule: "0 9 * * MON"
  timezone: Europe/Amsterdam
  audience: "profile.attributes.plan == 'trial'"
re_entry: always
steps:
  - {id: hello, type: send, message: hello, channels: [push]}
messages:
  hello:
    push: {body: "Weekly"}
"""


def profiles(count: int) -> list[dict[str, Any]]:
    """Every other profile is on the trial plan (the audience); each has a push token."""
    return [{"user_id": f"p{n:05d}", "push_token": f"tok-{n}", "timezone": "UTC",
             "attributes": {"plan": "trial" if n % 2 == 0 else "paid", "first_name": f"P{n}"}} for n in range(count)]


def import_profiles(local: LocalServer, count: int) -> None:
    reply = local.client.post("/v1/profiles", json={"profiles": profiles(count)}, timeout=60)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"upserted": count, "rejected": []}


def runs_of(local: LocalServer, journey_id: str) -> list[dict[str, Any]]:
    reply = local.client.get(f"/v1/journeys/{journey_id}/runs")
    assert reply.status_code == 200, reply.text
    found: list[dict[str, Any]] = reply.json()["runs"]
    return found


@pytest.fixture
def broadcast(journeys_dir: Path) -> Path:
    path = journeys_dir / "broadcast.yaml"
    path.write_text(BROADCAST.format(at=format_time(T0 + timedelta(seconds=3))), encoding="utf-8")
    return path


def test_an_at_run_3_s_ahead_sends_one_message_to_each_of_the_1000_matching_of_2000_profiles(
        broadcast: Path, start_local: StartLocal, tmp_path: Path) -> None:
    local = start_local(db=f"sqlite:///{tmp_path / 'journey.db'}")
    import_profiles(local, 2_000)
    local.advance(2.9)
    assert runs_of(local, "broadcast") == [] and local.outbox_lines() == []
    local.advance(0.1)
    sent = Counter(line["user_id"] for line in local.outbox_lines())
    assert set(sent) == {f"p{n:05d}" for n in range(0, 2_000, 2)}
    assert set(sent.values()) == {1}
    (run,) = runs_of(local, "broadcast")
    assert (run["status"], run["trigger"], run["matched"], run["entered"], run["skipped"]) == \
        ("finished", "at", 1_000, 1_000, {})
    assert run["profiles"] == 2_000 and run["scheduled_at"] == "2026-01-05T10:00:03Z" and not run["late"]
    assert run["started_at"] == run["finished_at"] == "2026-01-05T10:00:03Z"
    assert local.client.get(f"/v1/journeys/broadcast/runs/{run['run_id']}").json() == run
    (message,) = local.messages("p00000")
    assert message["content"]["body"] == f"journey.run {run['run_id']}"
    local.advance(7 * 86400)
    assert len(runs_of(local, "broadcast")) == 1  # one-off: it never runs again


def test_a_run_by_hand_answers_202_with_the_run_and_enters_no_one_twice(broadcast: Path, any_db: str,
                                                                        start_local: StartLocal) -> None:
    local = start_local(db=any_db)
    import_profiles(local, 10)
    reply = local.client.post("/v1/journeys/broadcast/runs")
    assert reply.status_code == 202, reply.text
    run = reply.json()
    assert reply.headers["location"] == f"/v1/journeys/broadcast/runs/{run['run_id']}"
    assert (run["status"], run["trigger"], run["entered"]) == ("pending", "manual", 0)
    local.settle()
    done = local.client.get(f"/v1/journeys/broadcast/runs/{run['run_id']}").json()
    assert (done["status"], done["matched"], done["entered"], done["skipped"]) == ("finished", 5, 5, {})
    local.client.post("/v1/events", json={"type": "order.placed", "user_id": "p00000"})  # no one else sees runs
    second = local.client.post("/v1/journeys/broadcast/runs").json()
    local.settle()
    again = local.client.get(f"/v1/journeys/broadcast/runs/{second['run_id']}").json()
    assert (again["matched"], again["entered"], again["skipped"]) == (5, 5, {})  # the first instances completed
    assert Counter(line["user_id"] for line in local.outbox_lines()) == {f"p{n:05d}": 2 for n in range(0, 10, 2)}


def test_runs_of_unknown_journeys_and_runs_are_404_and_an_event_journey_takes_none(
        broadcast: Path, local: LocalServer) -> None:
    for method, path in (("post", "/v1/journeys/nope/runs"), ("get", "/v1/journeys/nope/runs"),
                         ("get", "/v1/journeys/broadcast/runs/nope"), ("get", "/v1/journeys/nope/runs/nope")):
        reply = local.client.request(method.upper(), path)
        assert reply.status_code == 404, (path, reply.text)
        assert reply.headers["content-type"].startswith("application/problem+json")
    refused = local.client.post("/v1/journeys/order-updates/runs")
    assert refused.status_code == 409
    assert "entered by events" in refused.json()["detail"]
    assert local.client.get("/v1/journeys/order-updates/runs").json() == {"runs": []}
    assert local.client.post("/v1/journeys/broadcast/pause").status_code == 200
    paused = local.client.post("/v1/journeys/broadcast/runs")
    assert paused.status_code == 409 and "paused" in paused.json()["detail"]


def test_a_weekly_schedule_runs_at_each_local_instant_and_after_downtime_once_late(
        journeys_dir: Path, start_local: StartLocal, tmp_path: Path) -> None:
    (journeys_dir / "weekly.yaml").write_text(WEEKLY, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'journey.db'}"
    local = start_local(db=url)  # Monday 2026-01-05 10:00 UTC: 09:00 Amsterdam was two hours ago
    import_profiles(local, 4)
    local.advance(7 * 86400)
    (first,) = runs_of(local, "weekly")
    assert (first["scheduled_at"], first["entered"], first["late"]) == ("2026-01-12T08:00:00Z", 2, False)
    clock = local.clock
    local.stop()
    clock.advance_to(clock.now() + timedelta(days=15))  # down over two Mondays
    restarted = start_local(db=url, clock=clock)
    restarted.settle()
    latest, previous = runs_of(restarted, "weekly")
    assert previous == first
    assert (latest["scheduled_at"], latest["late"], latest["missed"], latest["entered"]) == \
        ("2026-01-26T08:00:00Z", True, 1, 2)
    assert latest["late_seconds"] == 26 * 3600  # made at the restart, Tuesday 10:00 UTC
    restarted.settle()
    assert len(runs_of(restarted, "weekly")) == 2  # not again


def test_two_workers_on_one_postgresql_make_one_run_and_one_takes_over_when_the_others_lease_runs_out(
        broadcast: Path, start_local: StartLocal, request: pytest.FixtureRequest) -> None:
    url = str(request.getfixturevalue("postgres_fresh_db_url"))
    clock = VirtualClock(T0)
    first, second = start_local(db=url, clock=clock), start_local(db=url, clock=clock)
    import_profiles(first, 3_000)
    clock.advance_to(T0 + timedelta(seconds=3))
    assert first.server.runs.create_due() + second.server.runs.create_due() == 1  # one run for the instant
    assert first.server.sweep_runs() == 1_000  # a chunk, then the first worker dies holding the lease
    assert second.server.sweep_runs() == 0  # the lease is the first's for 30 s
    clock.advance_to(clock.now() + timedelta(seconds=31))
    while second.server.sweep_runs():
        pass
    assert first.server.sweep_runs() == 0
    (run,) = runs_of(second, "broadcast")
    assert (run["status"], run["profiles"], run["matched"], run["entered"]) == ("finished", 3_000, 1_500, 1_500)
    second.settle()
    sent = Counter(line["user_id"] for line in second.outbox_lines())
    assert set(sent) == {f"p{n:05d}" for n in range(0, 3_000, 2)} and set(sent.values()) == {1}


def test_a_paused_journey_holds_its_run_and_stopping_it_cancels_the_run(broadcast: Path, local: LocalServer) -> None:
    import_profiles(local, 4)
    run = local.client.post("/v1/journeys/broadcast/runs").json()
    assert local.client.post("/v1/journeys/broadcast/pause").status_code == 200
    local.settle()
    held = local.client.get(f"/v1/journeys/broadcast/runs/{run['run_id']}").json()
    assert (held["status"], held["entered"]) == ("pending", 0)
    local.advance(3)  # the at instant comes while paused: recorded, cancelled
    at_run = next(r for r in runs_of(local, "broadcast") if r["trigger"] == "at")
    assert (at_run["status"], at_run["error"], at_run["entered"]) == ("cancelled", "journey paused", 0)
    assert local.client.post("/v1/journeys/broadcast/resume").status_code == 200
    local.settle()
    resumed = local.client.get(f"/v1/journeys/broadcast/runs/{run['run_id']}").json()
    assert (resumed["status"], resumed["entered"]) == ("finished", 2)
    second = local.client.post("/v1/journeys/broadcast/runs").json()
    assert local.client.post("/v1/journeys/broadcast/stop").status_code == 200
    stopped = local.client.get(f"/v1/journeys/broadcast/runs/{second['run_id']}").json()
    assert (stopped["status"], stopped["error"]) == ("cancelled", "journey stopped")


def test_the_dry_run_of_an_audience_journey_over_http_takes_profiles_alone(broadcast: Path, local: LocalServer) -> None:
    reply = local.client.post("/v1/journeys/broadcast/simulate", json={"profiles": profiles(6)})
    assert reply.status_code == 200, reply.text
    document = reply.json()
    assert [(r["scheduled_at"], r["matched"], r["entered"]) for r in document["runs"]] == \
        [("2026-01-05T10:00:03Z", 3, 3)]
    assert local.client.post("/v1/journeys/broadcast/simulate", json={"profiles": [], "start": "soon"}).status_code \
        == 422
    assert runs_of(local, "broadcast") == []  # a dry run stores nothing
