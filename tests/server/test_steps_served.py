"""The new steps in the served engine, over HTTP, on each store (memory, a SQLite file, PostgreSQL):
the same evaluator as `journey simulate` (tests/engine/test_steps_*.py), here with what only the
server has: marks and digests kept in the database across a restart, messages in the outbox, and
the cancel route."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from channels import load_policy
from tests.engine.test_steps_digest import UPDATES  # the journey `journey simulate` runs, served
from tests.server.conftest import LocalServer, StartLocal, post_events, put_profile

DAILY = """\
id: daily-deal
category: transactional
trigger: {event: deal.viewed}
steps:
  - {id: once_a_day, type: throttle, limit: 1, period: 1d}
  - {id: tell, type: send, message: deal, channels: [sms]}
messages:
  deal: {sms: {text: "Today's deal"}}
"""
PAYMENT = """\
id: payment
category: transactional
trigger: {event: order.placed}
steps:
  - {id: settle, type: wait, duration: 30m}
  - {id: paid, type: wait_for, event: order.paid, lookback: 1h, timeout: 1d, on_event: thanks, on_timeout: remind}
  - {id: remind, type: send, message: remind, channels: [sms], next: done}
  - {id: thanks, type: send, message: thanks, channels: [sms]}
  - {id: done, type: exit}
messages:
  remind: {sms: {text: "Your order waits for payment"}}
  thanks: {sms: {text: "Thanks for paying"}}
"""
CAPPED = """\
id: capped
category: transactional
trigger: {event: news}
limits: {messages: 2, per: 7d}
steps:
  - {id: tell, type: send, message: news, channels: [sms]}
messages:
  news: {sms: {text: "News"}}
"""
REMINDER = """\
id: reminder
category: transactional
trigger: {event: order.placed}
instance_key: event.properties.order
steps:
  - {id: later, type: wait, duration: 1h}
  - {id: nudge, type: send, message: nudge, channels: [sms]}
messages:
  nudge: {sms: {text: "Order {{ event.properties.order }} is waiting"}}
"""


PROMPT = """\
id: prompt
category: transactional
trigger: {event: order.confirmed}
instance_key: event.properties.order
steps:
  - {id: now, type: send, message: nudge, channels: [sms]}
  - {id: later, type: wait, duration: 1h}
  - {id: again, type: send, message: nudge, channels: [sms]}
messages:
  nudge: {sms: {text: "Order {{ event.properties.order }} is waiting"}}
"""


@pytest.fixture
def steps_dir(journeys_dir: Path) -> Path:
    for name, journey in {"daily-deal": DAILY, "payment": PAYMENT, "updates": UPDATES, "capped": CAPPED,
                       "reminder": REMINDER, "prompt": PROMPT}.items():
        (journeys_dir / f"{name}.yaml").write_text(journey, encoding="utf-8")
    return journeys_dir


def send(local: LocalServer, kind: str, user: str = "u1", **properties: Any) -> None:
    reply = post_events(local, {"type": kind, "user_id": user, "properties": properties})
    assert reply.status_code == 202, reply.text
    local.settle()


def instances(local: LocalServer, journey: str, user: str = "u1") -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = local.client.get(f"/v1/users/{user}/instances").json()["instances"]
    return [i for i in found if i["journey_id"] == journey]


def texts(local: LocalServer, user: str = "u1") -> list[str]:
    return [line["content"]["text"] for line in local.outbox_lines() if line["user_id"] == user]


def skips(local: LocalServer, user: str = "u1") -> list[tuple[str, str]]:
    exported = local.client.get(f"/v1/profiles/{user}/export").json()
    return sorted((s["step"], s["reason"]) for s in exported["skipped"])


def test_throttle_lets_one_entry_a_day_through_and_remembers_it_across_a_restart(
        any_db: str, steps_dir: Path, start_local: StartLocal) -> None:
    local = start_local(db=any_db)
    put_profile(local, "u1", "sms:transactional")
    for _ in range(2):
        send(local, "deal.viewed")
        local.advance(3600)
    if any_db != "memory":  # a restart reads the pass back from the database
        local.stop()
        local = start_local(db=any_db, clock=local.clock)
    send(local, "deal.viewed")
    local.advance(60)
    assert texts(local) == ["Today's deal"]
    ended = [(i["status"], i["reason"]) for i in instances(local, "daily-deal")]
    assert ended == [("completed", None), ("exited", "throttled"), ("exited", "throttled")]
    local.advance(86400)
    send(local, "deal.viewed")  # a day after the first pass
    assert texts(local) == ["Today's deal", "Today's deal"]


def test_wait_for_looks_back_at_a_payment_made_during_the_wait_before_it(
        any_db: str, steps_dir: Path, start_local: StartLocal) -> None:
    local = start_local(db=any_db)
    put_profile(local, "u1", "sms:transactional")
    put_profile(local, "u2", "sms:transactional")
    send(local, "order.placed", "u1")
    send(local, "order.placed", "u2")
    local.advance(600)
    send(local, "order.paid", "u1")  # 20 minutes before the wait_for begins
    local.advance(1200 + 60)
    assert texts(local, "u1") == ["Thanks for paying"]
    assert [i["path"] for i in instances(local, "payment", "u1")] == [["settle", "paid", "thanks", "done"]]
    assert texts(local, "u2") == []
    assert instances(local, "payment", "u2")[0]["step"] == "paid"
    if any_db != "memory":  # kept: only the type a look-back waits for, for the longest look-back
        assert _recent_rows(any_db) == [("u1", "event", "order.paid", 3600.0)]


def _recent_rows(url: str) -> list[tuple[str, str, str, float]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT user_id, kind, name, at, expires_at FROM recent ORDER BY id")).all()
    finally:
        engine.dispose()
    return [(u, k, n, (_aware(e) - _aware(a)).total_seconds()) for u, k, n, a, e in rows]


def _aware(value: Any) -> datetime:
    value = datetime.fromisoformat(value) if isinstance(value, str) else value
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@pytest.mark.parametrize("restart", [False, True], ids=["running", "restarted"])
def test_a_digest_collects_across_a_restart_and_sends_one_message(
        any_db: str, restart: bool, steps_dir: Path, start_local: StartLocal) -> None:
    if restart and any_db == "memory":
        pytest.skip("a memory store does not outlive its server")
    local = start_local(db=any_db)
    put_profile(local, "u1", "sms:transactional")
    for n, status in enumerate(("placed", "paid", "packed")):
        send(local, "order.updated", status=status)
        local.advance(60 * (n + 1))
    if restart:
        local.stop()
        local = start_local(db=any_db, clock=local.clock)
    for status in ("shipped", "out"):
        send(local, "order.updated", status=status)
        local.advance(60)
    assert texts(local) == []
    (open_digest,) = instances(local, "updates")
    assert open_digest["timer"]["kind"] == "digest" and open_digest["digest"]["count"] == 5
    local.advance(30 * 60)
    assert texts(local) == ["5 updates: placed paid packed shipped out "]
    send(local, "order.updated", status="late")
    local.advance(31 * 60)
    assert texts(local) == ["5 updates: placed paid packed shipped out ", "1 updates: late "]


def test_journey_limits_send_two_and_skip_the_third_as_journey_cap(
        any_db: str, steps_dir: Path, start_local: StartLocal) -> None:
    local = start_local(db=any_db)
    put_profile(local, "u1", "sms:transactional")
    for _ in range(3):
        send(local, "news")
        local.advance(3600)
    assert texts(local) == ["News", "News"]
    assert skips(local) == [("tell", "journey_cap")]
    local.advance(7 * 86400)
    send(local, "news")
    assert len(texts(local)) == 3


def test_cancel_ends_the_matching_instance_and_nothing_of_it_is_sent_later(
        any_db: str, steps_dir: Path, start_local: StartLocal) -> None:
    local = start_local(db=any_db)
    put_profile(local, "u1", "sms:transactional")
    send(local, "order.placed", order="A")
    send(local, "order.placed", order="B")
    cancel = {"user_id": "u1", "key": "A"}
    first = local.client.post("/v1/journeys/reminder/instances/cancel", json=cancel)
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["journey_id"], body["user_id"], body["key"]) == ("reminder", "u1", "A")
    assert [(i["key"], i["status"], i["reason"], i["timer"]) for i in body["instances"]] == [
        ("A", "exited", "cancelled_by_api", None)]
    again = local.client.post("/v1/journeys/reminder/instances/cancel", json=cancel)
    assert (again.status_code, again.json()) == (200, body)
    local.advance(2 * 3600)
    assert texts(local) == ["Order B is waiting"]
    assert {i["key"]: i["status"] for i in instances(local, "reminder")} == {"A": "exited", "B": "completed"}


def test_cancel_without_a_key_ends_every_instance_of_the_user_and_refuses_what_is_wrong(
        steps_dir: Path, start_local: StartLocal) -> None:
    local = start_local()
    put_profile(local, "u1", "sms:transactional")
    send(local, "order.placed", order="A")
    send(local, "order.placed", order="B")
    send(local, "order.placed", "u2", order="A")
    ended = local.client.post("/v1/journeys/reminder/instances/cancel", json={"user_id": "u1"})
    assert [i["key"] for i in ended.json()["instances"]] == ["A", "B"]
    assert instances(local, "reminder", "u2")[0]["status"] == "active"
    missing = local.client.post("/v1/journeys/nope/instances/cancel", json={"user_id": "u1"})
    assert missing.status_code == 404 and "no journey 'nope'" in missing.json()["detail"]
    bad = local.client.post("/v1/journeys/reminder/instances/cancel", json={"user": "u1"})
    assert bad.status_code == 422 and "user" in bad.text
    nobody = local.client.post("/v1/journeys/reminder/instances/cancel", json={"user_id": "nobody", "key": "A"})
    assert nobody.status_code == 200 and nobody.json()["instances"] == []


def test_cancel_also_cancels_a_message_still_waiting_in_the_outbox(
        steps_dir: Path, start_local: StartLocal, tmp_path: Path) -> None:
    """One SMS an hour may leave: order B's first message waits in the outbox behind A's; cancelling
    B keeps it, and B's later one, from ever being sent."""
    slow = tmp_path / "policy.yaml"
    slow.write_text("channels:\n  sms: {rate_per_second: 0.0002}\n", encoding="utf-8")
    local = start_local(db=f"sqlite:///{tmp_path / 'journey.db'}", policy=load_policy(slow))
    put_profile(local, "u1", "sms:transactional")
    send(local, "order.confirmed", order="A")
    send(local, "order.confirmed", order="B")
    reply = local.client.post("/v1/journeys/prompt/instances/cancel", json={"user_id": "u1", "key": "B"})
    assert [(i["key"], i["reason"]) for i in reply.json()["instances"]] == [("B", "cancelled_by_api")]
    local.advance(6 * 3600)
    assert texts(local) == ["Order A is waiting", "Order A is waiting"]
    statuses = {(m["content"]["text"], m["status"]) for m in local.messages("u1")}
    assert statuses == {("Order A is waiting", "sent"), ("Order B is waiting", "cancelled")}


def test_a_digest_in_progress_keeps_its_version_across_a_redeploy(
        steps_dir: Path, start_local: StartLocal, tmp_path: Path) -> None:
    local = start_local(db=f"sqlite:///{tmp_path / 'journey.db'}")
    put_profile(local, "u1", "sms:transactional")
    send(local, "order.updated", status="placed")
    send(local, "order.updated", status="paid")
    (steps_dir / "updates.yaml").write_text(UPDATES.replace("updates: {%", "changes: {%").replace("30m", "1h"),
                                            encoding="utf-8")
    assert local.client.post("/v1/journeys/reload").json()["changed"] == ["updates"]
    send(local, "order.updated", status="packed")  # joins the open digest, on the version it entered
    local.advance(30 * 60)
    assert texts(local) == ["3 updates: placed paid packed "]
    send(local, "order.updated", status="shipped")  # a new digest, on the new version
    local.advance(60 * 60)
    assert texts(local) == ["3 updates: placed paid packed ", "1 changes: shipped "]
