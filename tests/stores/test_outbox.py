"""The `Outbox` port on memory, SQLite and PostgreSQL: a claim leases due messages with the
address their channel needs, and a finished attempt is recorded."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from channels import Decision, Profile
from engine.ports import HostStore, carry_out
from engine.state import Outcome, Send
from engine.stores.memory import MemoryStore
from engine.stores.sql import SqlStore
from tests.stores.conftest import SQL_BACKENDS, sql_url

T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)
LEASE = timedelta(seconds=60)


@pytest.fixture(params=["memory", *SQL_BACKENDS])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HostStore]:
    url = None if request.param == "memory" else sql_url(request.param, request, tmp_path)
    made: HostStore = MemoryStore() if url is None else SqlStore(url)
    yield made
    made.close()


def _send(message_id: str, user_id: str, channel: str, at: datetime = T0) -> Send:
    return Send(message_id=message_id, instance_id=None, journey_id=None, user_id=user_id, step=None,
                message="hello", channel=channel, category="transactional", content={"text": "Hi é"}, cost=0.0,
                encoding=None, segments=None, decisions=(Decision(channel, True, None),), at=at)


def _queue(store: HostStore, *sends: Send) -> None:
    with store.transaction() as tx:
        tx.put_profile(Profile("u1", email="u1@example.com", phone="+14155550100", push_token="tok-1"))
        carry_out(tx, Outcome(None, list(sends)))


def _row(store: HostStore, message_id: str) -> dict[str, Any]:
    return next(m for m in store.messages_for_user("u1") if m["message_id"] == message_id)


def test_a_claim_carries_each_channels_address_and_none_without_a_profile(store: HostStore) -> None:
    sends = [_send(f"m-{c}", "u1", c) for c in ("push", "email", "sms", "mms", "rcs")]
    _queue(store, *sends, _send("m-x", "nobody", "sms"))
    items = {i.message_id: i for i in store.claim_outbox(T0, 100, LEASE)}
    assert {k: i.address for k, i in items.items()} == {
        "m-push": "tok-1", "m-email": "u1@example.com", "m-sms": "+14155550100", "m-mms": "+14155550100",
        "m-rcs": "+14155550100", "m-x": None}
    assert items["m-sms"].content == {"text": "Hi é"} and items["m-sms"].attempts == 0


def test_a_leased_message_is_not_claimed_again_until_its_lease_runs_out(store: HostStore) -> None:
    _queue(store, _send("m1", "u1", "push"), _send("m2", "u1", "push", T0 + timedelta(minutes=5)))
    assert [i.message_id for i in store.claim_outbox(T0, 100, LEASE)] == ["m1"]  # m2 is not due yet
    assert store.claim_outbox(T0 + timedelta(seconds=30), 100, LEASE) == []
    assert _row(store, "m1")["dispatch"] == "sending"
    later = T0 + timedelta(minutes=10)
    assert store.expire_interrupted(later) == 1
    assert [i.message_id for i in store.claim_outbox(later, 100, LEASE)] == ["m2"]
    assert _row(store, "m1")["dispatch"] == "unknown"  # its lease ran out mid-attempt: in doubt, never re-sent


def test_a_leased_message_never_handed_over_goes_back_to_pending_when_its_lease_runs_out(
        store: HostStore) -> None:
    _queue(store, _send("m1", "u1", "push"), _send("m2", "u1", "sms"), _send("m3", "u1", "email"))
    claimed = store.claim_outbox(T0, 100, LEASE, sending=1)
    assert [_row(store, i.message_id)["dispatch"] for i in claimed] == ["sending", "leased", "leased"]
    store.finish_outbox([], sending=[claimed[1].message_id])  # the next group is about to be handed over
    later = T0 + timedelta(minutes=2)
    assert store.expire_interrupted(later, retry_channels={"push"}) == 1
    assert {m: _row(store, m)["dispatch"] for m in ("m1", "m2", "m3")} == {
        "m1": "pending", "m2": "unknown", "m3": "pending"}  # m1: retried with its idempotency key
    assert sorted(i.message_id for i in store.claim_outbox(later, 100, LEASE)) == ["m1", "m3"]


def test_a_finished_attempt_is_recorded(store: HostStore) -> None:
    _queue(store, _send("m1", "u1", "sms"))
    store.claim_outbox(T0, 100, LEASE)
    retry = T0 + timedelta(seconds=5)
    store.finish_outbox([{"message_id": "m1", "dispatch": "pending", "status": "queued", "attempts": 1,
                          "next_attempt_at": retry, "provider": None, "provider_id": None, "error": "busy",
                          "at": T0}])
    assert [i.attempts for i in store.claim_outbox(retry, 100, LEASE)] == [1]
    store.finish_outbox([{"message_id": "m1", "dispatch": "sent", "status": "sent", "attempts": 2,
                          "next_attempt_at": None, "provider": "twilio", "provider_id": "SM1", "error": None,
                          "at": retry}])
    row = _row(store, "m1")
    assert (row["dispatch"], row["status"], row["attempts"], row["provider_id"]) == ("sent", "sent", 2, "SM1")
    assert store.message_by_provider_id("SM1") == {"message_id": "m1", "user_id": "u1", "channel": "sms",
                                                   "provider": "twilio"}
    assert store.outbox_next_due() is None


def test_queued_counts_the_pending_messages_by_channel_due_or_not(store: HostStore) -> None:
    later = T0 + timedelta(hours=1)
    _queue(store, _send("m1", "u1", "sms"), _send("m2", "u1", "sms", later), _send("m3", "u1", "push"),
           _send("m4", "u1", "sms"))
    assert store.outbox_queued() == {"sms": 3, "push": 1}
    claimed = Counter(i.channel for i in store.claim_outbox(T0, 2, LEASE))  # taken by a dispatcher: not waiting
    left = {"sms": 3 - claimed["sms"], "push": 1 - claimed["push"]}
    assert store.outbox_queued() == {channel: n for channel, n in left.items() if n}
    store.claim_outbox(T0, 100, LEASE)
    assert store.outbox_queued() == {"sms": 1}  # m2, not due yet
