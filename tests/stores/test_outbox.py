"""The `Outbox` port on memory, SQLite and PostgreSQL: a claim leases due messages with the
address their channel needs, a finished attempt is recorded, and every write after the claim is
fenced: only the claim that holds a message, within its lease, may mark it `sending`, record it
or renew it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from channels import Decision, Profile, load_policy
from engine.bench.workload import cart_event, w1_journey, w1_profile
from engine.clock import VirtualClock
from engine.ports import HostStore, carry_out
from engine.service import Engine
from engine.state import Fence, Outcome, Send
from engine.stores.memory import MemoryStore
from engine.stores.sql import SqlStore
from engine.stores.sql.outbox import claim_and_lease_sql
from tests.stores.conftest import CITUS, SQL_BACKENDS, rows_scanned, sql_url

T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def fence(token: str = "a", now: datetime = T0) -> Fence:
    return Fence(token, now, now + LEASE)


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
    return next(m for m in store.views.messages_for_user("u1") if m["message_id"] == message_id)


def test_a_claim_carries_each_channels_address_and_none_without_a_profile(store: HostStore) -> None:
    sends = [_send(f"m-{c}", "u1", c) for c in ("push", "email", "sms", "mms", "rcs")]
    _queue(store, *sends, _send("m-x", "nobody", "sms"))
    items = {i.message_id: i for i in store.outbox.claim_outbox(T0, 100, LEASE, "a")}
    assert {k: i.address for k, i in items.items()} == {
        "m-push": "tok-1", "m-email": "u1@example.com", "m-sms": "+14155550100", "m-mms": "+14155550100",
        "m-rcs": "+14155550100", "m-x": None}
    assert items["m-sms"].content == {"text": "Hi é"} and items["m-sms"].attempts == 0


def test_a_leased_message_is_not_claimed_again_until_its_lease_runs_out(store: HostStore) -> None:
    _queue(store, _send("m1", "u1", "push"), _send("m2", "u1", "push", T0 + timedelta(minutes=5)))
    assert [i.message_id for i in store.outbox.claim_outbox(T0, 100, LEASE, "a")] == ["m1"]  # m2 is not due yet
    assert store.outbox.claim_outbox(T0 + timedelta(seconds=30), 100, LEASE, "b") == []
    assert _row(store, "m1")["dispatch"] == "leased"
    assert store.outbox.finish_outbox([], fence(), sending=["m1"]) == {"m1"}
    assert _row(store, "m1")["dispatch"] == "sending"
    later = T0 + timedelta(minutes=10)
    assert store.outbox.expire_interrupted(later) == 1
    assert [i.message_id for i in store.outbox.claim_outbox(later, 100, LEASE, "b")] == ["m2"]
    assert _row(store, "m1")["dispatch"] == "unknown"  # its lease ran out mid-attempt: in doubt, never re-sent


def test_a_leased_message_never_handed_over_goes_back_to_pending_when_its_lease_runs_out(
        store: HostStore) -> None:
    _queue(store, _send("m1", "u1", "push"), _send("m2", "u1", "sms"), _send("m3", "u1", "email"))
    claimed = store.outbox.claim_outbox(T0, 100, LEASE, "a")
    store.outbox.finish_outbox([], fence(), sending=[claimed[0].message_id, claimed[1].message_id])
    assert [_row(store, i.message_id)["dispatch"] for i in claimed] == ["sending", "sending", "leased"]
    later = T0 + timedelta(minutes=2)
    assert store.outbox.expire_interrupted(later, retry_channels={"push"}) == 1
    assert {m: _row(store, m)["dispatch"] for m in ("m1", "m2", "m3")} == {
        "m1": "pending", "m2": "unknown", "m3": "pending"}  # m1: retried with its idempotency key
    assert sorted(i.message_id for i in store.outbox.claim_outbox(later, 100, LEASE, "b")) == ["m1", "m3"]


def test_a_finished_attempt_is_recorded(store: HostStore) -> None:
    _queue(store, _send("m1", "u1", "sms"))
    store.outbox.claim_outbox(T0, 100, LEASE, "a")
    retry = T0 + timedelta(seconds=5)
    finished = store.outbox.finish_outbox([{"message_id": "m1", "dispatch": "pending", "status": "queued",
                                            "attempts": 1, "next_attempt_at": retry, "provider": None,
                                            "provider_id": None, "error": "busy", "at": T0}], fence())
    assert finished == {"m1"}
    assert [i.attempts for i in store.outbox.claim_outbox(retry, 100, LEASE, "b")] == [1]
    store.outbox.finish_outbox([{"message_id": "m1", "dispatch": "sent", "status": "sent", "attempts": 2,
                          "next_attempt_at": None, "provider": "twilio", "provider_id": "SM1", "error": None,
                          "at": retry}], fence("b", retry))
    row = _row(store, "m1")
    assert (row["dispatch"], row["status"], row["attempts"], row["provider_id"]) == ("sent", "sent", 2, "SM1")
    assert store.views.message_by_provider_id("SM1") == {"message_id": "m1", "user_id": "u1", "channel": "sms",
                                                   "provider": "twilio"}
    assert store.outbox.outbox_next_due() is None


def _sent(message_id: str, at: datetime) -> dict[str, Any]:
    return {"message_id": message_id, "dispatch": "sent", "status": "sent", "attempts": 1, "next_attempt_at": None,
            "provider": "p", "provider_id": f"id-{message_id}", "error": None, "at": at}


def test_a_claim_that_ran_out_can_neither_mark_nor_record_nor_renew(store: HostStore) -> None:
    """Claim `a` outlives its lease; the expiry takes its messages back and claim `b` takes them:
    everything `a` still tries is refused, what `b` does is kept. Before the expiry ran, a lease
    that ran out is refused all the same."""
    _queue(store, _send("m1", "u1", "sms"), _send("m2", "u1", "sms"))
    store.outbox.claim_outbox(T0, 100, LEASE, "a")
    assert store.outbox.finish_outbox([], fence(), sending=["m1"]) == {"m1"}
    late = T0 + LEASE + timedelta(seconds=1)
    assert store.outbox.finish_outbox([_sent("m1", late)], fence("a", late), sending=["m2"]) == set()
    assert store.outbox.renew_outbox(["m1", "m2"], fence("a", late)) == set()
    assert store.outbox.expire_interrupted(late) == 1  # m1 was handed over: in doubt; m2 goes back to pending
    assert [i.message_id for i in store.outbox.claim_outbox(late, 100, LEASE, "b")] == ["m2"]
    refused = store.outbox.finish_outbox([_sent("m1", late), _sent("m2", late)], fence("a", T0), sending=["m2"])
    assert refused == set()
    assert store.outbox.renew_outbox(["m2"], fence("a", T0)) == set()
    assert {m: _row(store, m)["dispatch"] for m in ("m1", "m2")} == {"m1": "unknown", "m2": "leased"}
    assert store.outbox.finish_outbox([], fence("b", late), sending=["m2"]) == {"m2"}
    assert store.outbox.finish_outbox([_sent("m2", late)], fence("b", late)) == {"m2"}
    assert _row(store, "m2")["dispatch"] == "sent"
    assert store.outbox.finish_outbox([_sent("m2", late)], fence("b", late)) == set()  # the claim ended with it


def test_a_renewed_lease_is_not_taken_back_when_the_first_would_have_run_out(store: HostStore) -> None:
    _queue(store, _send("m1", "u1", "sms"), _send("m2", "u1", "sms"))
    store.outbox.claim_outbox(T0, 100, LEASE, "a")
    store.outbox.finish_outbox([], fence(), sending=["m1"])
    halfway = T0 + LEASE / 2
    assert store.outbox.renew_outbox(["m1", "m2"], fence("a", halfway)) == {"m1", "m2"}
    after_first = T0 + LEASE + timedelta(seconds=1)
    assert store.outbox.expire_interrupted(after_first) == 0
    assert store.outbox.claim_outbox(after_first, 100, LEASE, "b") == []
    assert {m: _row(store, m)["dispatch"] for m in ("m1", "m2")} == {"m1": "sending", "m2": "leased"}
    assert store.outbox.finish_outbox([_sent("m1", after_first)], fence("a", after_first)) == {"m1"}


def test_queued_counts_the_pending_messages_by_channel_due_or_not(store: HostStore) -> None:
    later = T0 + timedelta(hours=1)
    _queue(store, _send("m1", "u1", "sms"), _send("m2", "u1", "sms", later), _send("m3", "u1", "push"),
           _send("m4", "u1", "sms"))
    assert store.outbox.outbox_queued() == {"sms": 3, "push": 1}
    claimed = Counter(i.channel for i in store.outbox.claim_outbox(T0, 2, LEASE, "a"))  # a dispatcher's: not waiting
    left = {"sms": 3 - claimed["sms"], "push": 1 - claimed["push"]}
    assert store.outbox.outbox_queued() == {channel: n for channel, n in left.items() if n}
    store.outbox.claim_outbox(T0, 100, LEASE, "b")
    assert store.outbox.outbox_queued() == {"sms": 1}  # m2, not due yet



def test_a_batch_of_attempts_records_only_the_rows_its_claim_holds(store: HostStore) -> None:
    """Twelve attempts recorded at once (on PostgreSQL one update over arrays, not a statement a
    row): the six messages claim `a` holds are written and returned, the six claim `b` holds are
    refused and left as `b` has them."""
    _queue(store, *(_send(f"m{n:02d}", "u1", "sms") for n in range(12)))
    ours = [i.message_id for i in store.outbox.claim_outbox(T0, 6, LEASE, "a")]
    theirs = [i.message_id for i in store.outbox.claim_outbox(T0, 6, LEASE, "b")]
    assert store.outbox.finish_outbox([], fence(), sending=ours) == set(ours)
    recorded = store.outbox.finish_outbox([_sent(m, T0) for m in ours + theirs], fence())
    assert recorded == set(ours) and len(ours) == len(theirs) == 6
    assert {m: _row(store, m)["dispatch"] for m in ours + theirs} == {
        **{m: "sent" for m in ours}, **{m: "leased" for m in theirs}}
    assert store.outbox.finish_outbox([_sent(m, T0) for m in ours], fence()) == set()  # the claim ended with them


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_the_rows_the_fenced_writes_change_are_counted_for_the_bench(
        backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """`journey bench`'s rows per event counts what the claim's fenced writes change, though they
    return their rows (SQLite's driver reports those counts only once the rows are read)."""
    store = SqlStore(sql_url(backend, request, tmp_path))
    _queue(store, *(_send(f"m{n:02d}", "u1", "sms") for n in range(12)))
    ids = [i.message_id for i in store.outbox.claim_outbox(T0, 100, LEASE, "a")]
    before = store.stats.rows
    store.outbox.finish_outbox([], fence(), sending=ids)
    store.outbox.renew_outbox(ids, fence("a", T0 + timedelta(seconds=1)))
    store.outbox.finish_outbox([_sent(m, T0) for m in ids], fence())
    assert store.stats.rows - before == 3 * 12
    store.close()


def test_a_windows_answers_and_its_next_messages_are_written_together_only_where_the_claim_holds(
        store: HostStore) -> None:
    """The dispatcher's write between two windows records the answers of one and marks the next
    `sending` (on PostgreSQL in one statement): a claim that ran out does neither, a live one both."""
    _queue(store, *(_send(f"m{n}", "u1", "sms") for n in range(6)))
    ids = [i.message_id for i in store.outbox.claim_outbox(T0, 100, LEASE, "a")]
    assert store.outbox.finish_outbox([], fence(), sending=ids[:3]) == set(ids[:3])
    late = T0 + LEASE + timedelta(seconds=1)
    answers = [_sent(m, late) for m in ids[:2]]
    assert store.outbox.finish_outbox(answers, fence("a", late), sending=ids[3:5]) == set()
    assert [_row(store, m)["dispatch"] for m in ids] == ["sending"] * 3 + ["leased"] * 3
    now = T0 + timedelta(seconds=1)
    assert store.outbox.finish_outbox([_sent(m, now) for m in ids[:2]], fence("a", now), sending=ids[3:5]) == {
        *ids[:2], *ids[3:5]}
    assert [_row(store, m)["dispatch"] for m in ids] == ["sent", "sent", "sending", "sending", "sending", "leased"]
    assert _row(store, ids[0])["provider_id"] == f"id-{ids[0]}"


@pytest.mark.parametrize("backend", ["postgresql", CITUS])
def test_between_two_windows_the_dispatcher_updates_its_messages_once(
        backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Recording a window's answers and marking the next one's messages is one UPDATE statement
    (a shard's users' on Citus), beside the read of the rows' statuses and the counters."""
    store = SqlStore(sql_url(backend, request, tmp_path))
    _queue(store, *(_send(f"m{n}", "u1", "sms") for n in range(6)))
    ids = [i.message_id for i in store.outbox.claim_outbox(T0, 100, LEASE, "a")]
    users = {m: "u1" for m in ids}
    store.outbox.finish_outbox([], Fence("a", T0, T0 + LEASE, users), sending=ids[:3])
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda _c, _k, sql, *_: statements.append(sql))
    written = store.outbox.finish_outbox([_sent(m, T0) for m in ids[:3]], Fence("a", T0, T0 + LEASE, users),
                                         sending=ids[3:])
    assert written == set(ids)
    assert sum("UPDATE messages" in s for s in statements) == 1, statements
    store.close()


def test_a_windows_write_adds_what_it_recorded_to_the_journeys_counters_in_the_same_statement(
        postgres_fresh_db_url: str) -> None:
    """W1's pushes for five users, recorded sent: the `msg:push:sent` counters say five, and on
    PostgreSQL no statement of the dispatcher's writes but the window's own wrote them."""
    store = SqlStore(postgres_fresh_db_url)
    users = 5
    with store.transaction() as tx:
        for n in range(users):
            tx.put_profile(w1_profile(n))
    engine = Engine([w1_journey(timedelta(seconds=2))], load_policy(), store, VirtualClock(T0))
    engine.accept_many([cart_event(n, T0) for n in range(users)])
    while engine.process_queued(100):
        pass
    claimed = store.outbox.claim_outbox(T0, 100, LEASE, "a")
    owners = {i.message_id: i.user_id for i in claimed}
    held = Fence("a", T0, T0 + LEASE, owners)
    assert store.outbox.finish_outbox([], held, sending=sorted(owners)) == set(owners)
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda _c, _k, sql, *_: statements.append(sql))
    assert store.outbox.finish_outbox([_sent(m, T0) for m in owners], held) == set(owners)
    assert not [s for s in statements if s.startswith("INSERT INTO journey_counters")], statements
    sent = {name: value for _path, name, value in store.views.journey_counts("w1-push-then-sms", None, None, None)
            if name.startswith("msg:push:")}
    assert sent.get("msg:push:sent") == users and len(claimed) == users, sent
    store.close()


def test_a_claims_lease_finds_each_row_by_its_key_not_by_a_scan_of_every_message(
        postgres_fresh_db_url: str) -> None:
    """Leasing the claimed rows joins them by the primary key (user, message): before, by the
    message alone, which no index serves since the key starts with the user, so every claim read
    every message."""
    store = SqlStore(postgres_fresh_db_url)
    for start in range(0, 5000, 1000):
        with store.transaction() as tx:
            carry_out(tx, Outcome(None, [_send(f"m{n}", f"u{n}", "push") for n in range(start, start + 1000)]))
    with store.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE messages")
        plan = "\n".join(str(r[0]) for r in conn.exec_driver_sql(
            "EXPLAIN " + claim_and_lease_sql(20), (T0, T0 + LEASE, "a")))
    store.close()
    assert "Seq Scan on messages" not in plan, plan


@pytest.mark.parametrize("recording", [False, True], ids=["marked alone", "marked with a window's answers"])
def test_marking_messages_sending_reads_only_them_though_the_statistics_say_none_are_leased(
        postgres_fresh_db_url: str, recording: bool) -> None:
    """Mid-burst the statistics still say few messages are leased. The statement marking a window
    `sending` then read every leased message through the partial index of leased messages (5-9 ms
    a window at 20,000 leased) rather than look up each of the window's by its key."""
    store = SqlStore(postgres_fresh_db_url)
    with store.transaction() as tx:
        carry_out(tx, Outcome(None, [_send(f"m{n}", f"u{n}", "push") for n in range(3000)]))
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE messages SET (autovacuum_enabled = off)")
        conn.exec_driver_sql("ANALYZE messages")  # every message pending: none leased, as far as it knows
    claimed = store.outbox.claim_outbox(T0, 3000, LEASE, "a")
    held = Fence("a", T0, T0 + LEASE, {i.message_id: i.user_id for i in claimed})
    window = sorted(held.users)[:20]
    marking: list[tuple[str, Any]] = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda conn, cursor, sql, params, *_: marking.append((sql, params)) if "'sending'" in sql else None)
    answers = [{"message_id": window[0], "dispatch": "sent", "status": "sent", "attempts": 1, "next_attempt_at": None,
                "provider": "fcm", "provider_id": "p1", "error": None, "at": T0}] if recording else []
    assert store.outbox.finish_outbox(answers, held, sending=window[1:]) == set(window if recording else window[1:])
    assert len(marking) == 1, marking
    sql, params = marking[0]
    with store.engine.connect() as conn, conn.begin() as undone:  # the statement again, its plan measured, undone
        (plan,) = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).scalar_one()
        undone.rollback()
    store.close()
    assert rows_scanned(plan["Plan"], "messages") <= 3 * len(window), plan
