"""The Store/Tx contract (engine/ports.py), one suite for every backend: memory, SQLite, PostgreSQL.

Each test writes through `apply`/`put_profile`/..., reads back in the same transaction (a Tx
sees its own writes) and again in a new transaction after commit (the writes are durable).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar, cast

import pytest

from channels import ChannelEngagement, ConsentRecord, Decision, Profile, SentRecord
from channels.links import TrackedLink
from engine.ports import EntryHistory, HostStore, JourneyVersion, Store, Tx, carry_out
from engine.state import Cancel, Escalation, Instance, Outcome, Schedule, Send, Skip, TimerRef, Trace

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
EVENT: dict[str, Any] = {"id": "e1", "type": "cart.abandoned", "user_id": "u1", "timestamp": "2026-01-05T10:00:00Z",
                         "properties": {"sku": "A-1", "qty": 2, "price": 9.5, "tags": ["x", "é"], "gift": None}}
R = TypeVar("R")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def instance(instance_id: str = "i1", user_id: str = "u1", journey_id: str = "cart", key: str | None = None,
             entered_at: datetime = T0, **changes: Any) -> Instance:
    made = Instance(instance_id=instance_id, journey_id=journey_id, version="v1", user_id=user_id, key=key,
                    entered_at=entered_at, event=EVENT, step="push", path=("push",))
    return replace(made, **changes)


def send(message_id: str, user_id: str = "u1", channel: str = "push", when: datetime = T0,
         instance_id: str | None = "i1", category: str = "marketing", links: tuple[TrackedLink, ...] = ()) -> Send:
    return Send(message_id=message_id, instance_id=instance_id, journey_id="cart" if instance_id else None,
                user_id=user_id, step="push" if instance_id else None, message="nudge", channel=channel,
                category=category, content={"title": "Hi", "body": "Your cart misses you"}, cost=0.0, encoding=None,
                segments=None, decisions=(Decision(channel, True, None),), at=when, links=links)


def waiting(inst: Instance, timer_id: str, due: datetime) -> Outcome:
    """The instance now waiting on one timer, and the command that schedules it."""
    timer = TimerRef(timer_id, due, "wait")
    return Outcome(replace(inst, step="wait", timer=timer), [Schedule(inst.instance_id, inst.user_id, timer)])


def consent(channel: str, granted: bool, when: datetime, source: str = "api") -> ConsentRecord:
    return ConsentRecord(channel, "marketing", granted, source, when)


def profile(user_id: str = "u1", consents: Sequence[ConsentRecord] = (), **fields: Any) -> Profile:
    base = Profile(user_id, timezone="Europe/Paris", email=f"{user_id}@example.com", phone="+14155550100",
                   push_token=f"tok-{user_id}", rcs_capable=True, attributes={"tier": "gold", "n": [1, 2]},
                   consents=tuple(consents), locale="fr-FR")
    return replace(base, **fields)


def commit(store: Store, *outcomes: Outcome) -> None:
    with store.transaction() as tx:
        for outcome in outcomes:
            carry_out(tx, outcome)


def read(store: Store, query: Callable[[Tx], R]) -> R:
    """Run `query` in a new transaction, after everything before it committed."""
    with store.transaction() as tx:
        return query(tx)


def both(store: Store, tx: Tx, query: Callable[[Tx], R]) -> tuple[R, Callable[[], R]]:
    """`query` now, in `tx`, and a thunk that runs it again in a new transaction (call it after commit)."""
    return query(tx), lambda: read(store, query)


def by_time(records: Sequence[SentRecord]) -> list[SentRecord]:
    return sorted(records, key=lambda r: r.at)


def is_utc(when: datetime | None) -> bool:
    return when is not None and when.tzinfo is not None and when.utcoffset() == timedelta(0)


class Boom(Exception):
    """Raised inside a transaction to make it roll back."""


# --- idempotency keys -------------------------------------------------------------------------------------------


def test_remember_events_returns_new_ids_once(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.remember_events(["a", "b", "a"]) == {"a", "b"}
        assert tx.remember_events(["b", "c"]) == {"c"}
    assert read(store, lambda tx: tx.remember_events(["a", "c", "d", "d"])) == {"d"}
    assert read(store, lambda tx: tx.remember_events(["a", "b", "c", "d"])) == set()


def test_remember_no_events(store: Store) -> None:
    assert read(store, lambda tx: tx.remember_events([])) == set()


# --- profiles and the consent ledger ----------------------------------------------------------------------------


def test_unknown_profile_is_none(store: Store) -> None:
    assert read(store, lambda tx: tx.get_profile("nobody")) is None


def test_profile_round_trips(store: Store) -> None:
    saved = profile(consents=[consent("sms", True, at(-60)), consent("push", False, at(-30), source=None)])
    with store.transaction() as tx:
        tx.put_profile(saved)
        now, later = both(store, tx, lambda tx: tx.get_profile("u1"))
        assert now is not None and now.to_dict() == saved.to_dict()
    loaded = later()
    assert loaded is not None
    assert loaded.to_dict() == saved.to_dict()
    assert loaded.consents == saved.consents
    assert all(is_utc(c.at) for c in loaded.consents)


def test_put_profile_upserts(store: Store) -> None:
    with store.transaction() as tx:
        tx.put_profile(profile("u1"))
        tx.put_profile(profile("u2"))
    with store.transaction() as tx:
        tx.put_profile(profile("u1", email="new@example.com", phone=None, rcs_capable=False, attributes={}))
    loaded = read(store, lambda tx: (tx.get_profile("u1"), tx.get_profile("u2")))
    assert loaded[0] == profile("u1", email="new@example.com", phone=None, rcs_capable=False, attributes={})
    assert loaded[1] is not None and loaded[1].to_dict() == profile("u2").to_dict()


def test_consent_ledger_is_appended_not_rewritten(store: Store) -> None:
    first, second, third = consent("sms", True, at(-60)), consent("sms", False, at(-10), "keyword"), consent(
        "email", True, at(-5))
    with store.transaction() as tx:
        tx.put_profile(profile(consents=[first]))
    with store.transaction() as tx:
        stored = tx.get_profile("u1")
        assert stored is not None
        tx.put_profile(stored.with_consents([second]))
        tx.put_profile(stored.with_consents([second, third]))
        assert tx.get_profile("u1") == profile(consents=[first, second, third])
    with store.transaction() as tx:
        tx.put_profile(profile(consents=[first, second, third]))  # nothing new: nothing appended
    loaded = read(store, lambda tx: tx.get_profile("u1"))
    assert loaded is not None
    assert loaded.consents == (first, second, third)
    assert all(is_utc(c.at) for c in loaded.consents)


# --- instances and entry history --------------------------------------------------------------------------------


def counts(*message_ids: str, engaged: str | None = None) -> dict[str, ChannelEngagement]:
    """Push counts after sending `message_ids` (and engagement with one of them)."""
    push = ChannelEngagement()
    for message_id in message_ids:
        push = push.after_send(message_id, T0, HALF_LIFE)
    if engaged is not None:
        found = push.after_feedback(engaged, "engaged", at(5), 11, HALF_LIFE)
        assert found is not None
        push = found
    return {"push": push}


HALF_LIFE = timedelta(days=30)


def test_engagement_is_kept_with_the_profile_and_an_upsert_without_it_keeps_it(store: Store) -> None:
    with store.transaction() as tx:
        tx.put_profile(profile())
        tx.put_engagement("u1", counts("m1"))
        tx.put_engagement("nobody", counts("m9"))  # no profile: nothing to keep it in
        assert tx.get_profile("u1").engagement == counts("m1")  # type: ignore[union-attr]
    with store.transaction() as tx:
        tx.prefetch({"u1"}, at(-60))
        tx.put_engagement("u1", counts("m1", "m2", engaged="m2"))
    with store.transaction() as tx:
        tx.put_profile(profile(email="new@example.com"))  # a profile upsert from the API, no counts in it
    loaded = read(store, lambda tx: (tx.get_profile("u1"), tx.get_profile("nobody")))
    assert loaded[0] is not None and loaded[0].email == "new@example.com"
    assert loaded[0].engagement == counts("m1", "m2", engaged="m2")  # the tracked messages too
    assert loaded[1] is None
    with store.transaction() as tx:
        tx.put_profile(profile(engagement={}))  # given empty: cleared
    assert read(store, lambda tx: tx.get_profile("u1")).engagement in ({}, None)  # type: ignore[union-attr]


def test_engagement_rolls_back_with_its_transaction(store: Store) -> None:
    with store.transaction() as tx:
        tx.put_profile(profile())
        tx.put_engagement("u1", counts("m1"))
    with pytest.raises(Boom), store.transaction() as tx:
        tx.prefetch({"u1"}, at(-60))
        tx.put_engagement("u1", counts("m1", "m2"))
        raise Boom
    assert read(store, lambda tx: tx.get_profile("u1")).engagement == counts("m1")  # type: ignore[union-attr]


def test_a_batch_of_engagement_is_written_for_every_user_in_it(store: Store) -> None:
    """A batch's feedback for many people: each profile gets its own counts, the documents
    untouched; on SQL, in fewer statements than people (one over arrays on PostgreSQL, one
    `UPDATE ... FROM (VALUES ...)` on SQLite, with the transaction's reads); on Citus one a shard
    the people fall in (each routed), with the same reads."""
    users = [f"u{n}" for n in range(12)]
    with store.transaction() as tx:
        for user_id in users:
            tx.put_profile(profile(user_id))
    stats = getattr(store, "stats", None)
    before = stats.statements if stats is not None else 0
    with store.transaction() as tx:
        tx.prefetch(set(users), at(-60))
        for n, user_id in enumerate(users):
            tx.put_engagement(user_id, counts(*(f"m{k}" for k in range(n + 1))))
    if stats is not None:
        partitioning = getattr(store, "partitioning", None)  # SQL stores: how their users fall in shards
        if partitioning is not None and partitioning.shards:
            reads = 7  # the users' locks, their profiles, consents, instances, sends, numbers' suppressions
            assert stats.statements - before <= len({partitioning.of(u) for u in users}) + reads
        else:
            assert stats.statements - before < len(users)
    loaded = read(store, lambda tx: [tx.get_profile(user_id) for user_id in users])
    assert [p.engagement if p else None for p in loaded] == [counts(*(f"m{k}" for k in range(n + 1)))
                                                             for n in range(12)]
    assert all(p is not None and p.locale == "fr-FR" for p in loaded)


def test_unknown_instance_is_none(store: Store) -> None:
    assert read(store, lambda tx: tx.get_instance("missing")) is None
    assert read(store, lambda tx: list(tx.active_instances("nobody"))) == []


def test_event_values_json_handles_badly_round_trip_exactly(store: Store) -> None:
    """Integers beyond 64 bits, non-ASCII text and deep nesting in an event's properties."""
    properties = {"big": 2**70, "neg": -(2**65), "text": "naïve 🚀 \u2028", "deep": [[{"a": [1.5]}]]}
    event = {**EVENT, "properties": properties}
    commit(store, Outcome(instance(event=event)))
    loaded = read(store, lambda tx: tx.get_instance("i1"))
    assert loaded is not None and loaded.event == event
    assert loaded.event["properties"]["big"] == 2**70 and isinstance(loaded.event["properties"]["big"], int)


def test_instance_round_trips(store: Store) -> None:
    paris = timezone(timedelta(hours=1))
    running = instance(step="sms", path=("push", "wait", "sms"), seq=3, timer=TimerRef("t1", at(30), "escalate"),
                       escalation=Escalation(("email", "sms"), timedelta(hours=2), "m1", "push"))
    ended = instance("i2", key="order-7", entered_at=at(-5).astimezone(paris), status="exited", step=None,
                     reason="exit_when", ended_at=at(5))
    with store.transaction() as tx:
        carry_out(tx, Outcome(running))
        carry_out(tx, Outcome(ended))
        now, later = both(store, tx, lambda tx: (tx.get_instance("i1"), tx.get_instance("i2")))
        assert now == (running, ended)
    loaded = later()
    assert loaded == (running, ended)
    assert loaded[0] is not None and loaded[0].to_dict() == running.to_dict()
    assert loaded[1] is not None and loaded[1].to_dict() == ended.to_dict()
    assert loaded[0].timer is not None and is_utc(loaded[0].timer.due)
    assert is_utc(loaded[0].entered_at) and is_utc(loaded[1].ended_at)


def test_apply_replaces_the_saved_instance(store: Store) -> None:
    commit(store, Outcome(instance()))
    moved = instance(step="sms", path=("push", "sms"), seq=1)
    with store.transaction() as tx:
        carry_out(tx, Outcome(moved))
        now, later = both(store, tx, lambda tx: tx.get_instance("i1"))
        assert now == moved
    assert later() == moved


def test_active_instances_are_the_users_active_ones(store: Store) -> None:
    commit(store, Outcome(instance("i1")), Outcome(instance("i2", journey_id="welcome")),
           Outcome(instance("i3", user_id="u2")), Outcome(instance("i4", status="completed")))
    with store.transaction() as tx:
        carry_out(tx, Outcome(instance("i2", journey_id="welcome", status="completed", ended_at=at(1))))
        carry_out(tx, Outcome(instance("i5", entered_at=at(2))))
        now, later = both(store, tx, lambda tx: sorted(i.instance_id for i in tx.active_instances("u1")))
        assert now == ["i1", "i5"]
    assert later() == ["i1", "i5"]
    assert read(store, lambda tx: list(tx.active_instances("u2"))) == [instance("i3", user_id="u2")]


def test_entry_history_is_none_before_any_entry(store: Store) -> None:
    commit(store, Outcome(instance()))
    with store.transaction() as tx:
        assert tx.entry_history("other-journey", "u1", None) is None
        assert tx.entry_history("cart", "u2", None) is None


def test_entry_history_follows_the_latest_instance(store: Store) -> None:
    commit(store, Outcome(instance("i1")))
    assert read(store, lambda tx: tx.entry_history("cart", "u1", None)) == EntryHistory(True, T0)
    commit(store, Outcome(instance("i1", status="completed", ended_at=at(10))))
    history = read(store, lambda tx: tx.entry_history("cart", "u1", None))
    assert history == EntryHistory(False, T0)
    assert history is not None and is_utc(history.last_entered_at)
    with store.transaction() as tx:
        carry_out(tx, Outcome(instance("i2", entered_at=at(60))))
        now, later = both(store, tx, lambda tx: tx.entry_history("cart", "u1", None))
        assert now == EntryHistory(True, at(60))
    assert later() == EntryHistory(True, at(60))


def test_entry_history_prefers_the_active_instance_on_a_tie(store: Store) -> None:
    """A journey that ends and is entered again in the same instant: the new entry is the active one."""
    commit(store, Outcome(instance("i9", status="completed", ended_at=T0)), Outcome(instance("i1")))
    assert read(store, lambda tx: tx.entry_history("cart", "u1", None)) == EntryHistory(True, T0)


def test_entry_history_key_none_is_distinct_from_a_key(store: Store) -> None:
    commit(store, Outcome(instance("i1", key="A", entered_at=at(1))))
    with store.transaction() as tx:
        assert tx.entry_history("cart", "u1", None) is None
        assert tx.entry_history("cart", "u1", "A") == EntryHistory(True, at(1))
        assert tx.entry_history("cart", "u1", "B") is None
    commit(store, Outcome(instance("i2", entered_at=at(2), status="completed")))
    with store.transaction() as tx:
        assert tx.entry_history("cart", "u1", None) == EntryHistory(False, at(2))
        assert tx.entry_history("cart", "u1", "A") == EntryHistory(True, at(1))


# --- sends, message status, skips and traces --------------------------------------------------------------------


def test_recent_sends_are_those_at_or_after_since(store: Store) -> None:
    commit(store, Outcome(instance(), [send("m1", when=at(0))]), Outcome(instance("i2", user_id="u2"),
                                                                            [send("m9", "u2", "sms", at(30), "i2")]))
    with store.transaction() as tx:
        carry_out(tx, Outcome(instance(seq=1), [send("m2", channel="sms", when=at(60), category="transactional")]))
        carry_out(tx, Outcome(instance(seq=2), [send("m3", channel="email", when=at(120))]))
        expected = [SentRecord("push", "marketing", at(0), "cart"),
                    SentRecord("sms", "transactional", at(60), "cart"),
                    SentRecord("email", "marketing", at(120), "cart")]  # a journey's limits count its own sends
        now, later = both(store, tx, lambda tx: by_time(tx.recent_sends("u1", at(-1))))
        assert now == expected
    assert later() == expected
    assert all(is_utc(r.at) for r in later())
    with store.transaction() as tx:
        assert by_time(tx.recent_sends("u2", at(0))) == [SentRecord("sms", "marketing", at(30), "cart")]
        assert by_time(tx.recent_sends("nobody", at(0))) == []
        assert by_time(tx.recent_sends("u1", at(60))) == expected[1:]
        assert by_time(tx.recent_sends("u1", at(121))) == []
        assert by_time(tx.recent_sends("u1", at(0))) == expected  # a narrow window forgets nothing


def test_a_send_without_an_instance_counts(store: Store) -> None:
    """Keyword replies (STOP/START/HELP) are sent outside any journey: Outcome(None, [send, trace])."""
    reply = send("r1", channel="sms", instance_id=None, category="transactional")
    commit(store, Outcome(None, [reply, Trace(T0, "u1", None, None, "keyword", "stop_confirmation")]))
    with store.transaction() as tx:
        assert list(tx.recent_sends("u1", T0)) == [SentRecord("sms", "transactional", T0)]
        assert tx.latest_message("u1", "sms") == "r1"
        assert list(tx.active_instances("u1")) == []


def test_latest_message_per_user_and_channel(store: Store) -> None:
    assert read(store, lambda tx: tx.latest_message("u1", "sms")) is None
    commit(store, Outcome(instance(), [send("m1", channel="sms", when=at(0)), send("m2", when=at(1))]))
    with store.transaction() as tx:
        carry_out(tx, Outcome(instance(seq=1), [send("m3", channel="sms", when=at(2))]))
        now, later = both(store, tx, lambda tx: (tx.latest_message("u1", "sms"), tx.latest_message("u1", "push")))
        assert now == ("m3", "m2")
    assert later() == ("m3", "m2")
    with store.transaction() as tx:
        assert tx.latest_message("u1", "email") is None
        assert tx.latest_message("u2", "sms") is None


def test_set_message_status_takes_known_and_unknown_ids(store: Store) -> None:
    """A receipt may name a message we never sent (webhooks are user input): no error, and the
    transaction's other writes still commit."""
    commit(store, Outcome(instance(), [send("m1")]))
    with store.transaction() as tx:
        tx.set_message_status("u1", "m1", "delivered", at(1))
        tx.set_message_status("u1", "m1", "opened", at(2))
        tx.set_message_status("u1", "no-such-message", "delivered", at(3))
        tx.set_message_status("u2", "m1", "failed", at(3))  # not u2's message: left alone
        carry_out(tx, Outcome(instance(seq=1), [send("m2", when=at(4))]))
    with store.transaction() as tx:
        assert tx.latest_message("u1", "push") == "m2"
        assert len(tx.recent_sends("u1", T0)) == 2


def test_skips_and_traces_are_not_sends(store: Store) -> None:
    skip = Skip("i1", "u1", "push", "nudge", "no_eligible_channel", (Decision("push", False, "no_consent"),), T0,
                "push: no consent")
    trace = Trace(T0, "u1", "i1", "push", "skipped", "no eligible channel")
    commit(store, Outcome(instance(), [skip, trace]))
    with store.transaction() as tx:
        assert list(tx.recent_sends("u1", at(-60))) == []
        assert tx.latest_message("u1", "push") is None
        assert tx.get_instance("i1") == instance()


# --- timers -----------------------------------------------------------------------------------------------------


def drain(tx: Tx, now: datetime, limit: int) -> list[tuple[str, str]]:
    """Claims until one takes nothing (a claim takes one shard's timers on Citus)."""
    claimed: list[tuple[str, str]] = []
    while taken := list(tx.claim_due_timers(now, limit - len(claimed))) if len(claimed) < limit else []:
        claimed += taken
    return claimed


def test_due_timers_are_claimed_earliest_first_and_once(store: Store) -> None:
    commit(store, waiting(instance("i3"), "t3", at(3)), waiting(instance("i1"), "t1", at(1)),
           waiting(instance("i2", user_id="u2"), "t2", at(2)))
    assert store.next_due() == at(1)
    with store.transaction() as tx:
        assert list(tx.claim_due_timers(at(0.5), 10)) == []
        # due == now counts; on Citus a claim takes one shard's, the earliest's first: claimed until none left
        assert drain(tx, at(2), 10) == [("i1", "t1"), ("i2", "t2")]
    assert store.next_due() == at(3)
    assert read(store, lambda tx: list(tx.claim_due_timers(at(2), 10))) == []
    assert read(store, lambda tx: list(tx.claim_due_timers(at(60), 10))) == [("i3", "t3")]
    assert store.next_due() is None
    assert read(store, lambda tx: list(tx.claim_due_timers(at(60), 10))) == []


def test_claim_respects_the_limit(store: Store) -> None:
    commit(store, *(waiting(instance(f"i{n}"), f"t{n}", at(n)) for n in (4, 2, 5, 1, 3)))
    assert read(store, lambda tx: list(tx.claim_due_timers(at(10), 2))) == [("i1", "t1"), ("i2", "t2")]
    assert store.next_due() == at(3)
    assert read(store, lambda tx: list(tx.claim_due_timers(at(10), 10))) == [("i3", "t3"), ("i4", "t4"), ("i5", "t5")]


def test_cancel_removes_a_timer(store: Store) -> None:
    commit(store, waiting(instance("i1"), "t1", at(1)), waiting(instance("i2"), "t2", at(2)))
    with store.transaction() as tx:
        carry_out(tx, Outcome(instance("i1", step="done", status="completed"), [Cancel("t1")]))
        carry_out(tx, Outcome(None, [Cancel("never-scheduled")]))
    assert store.next_due() == at(2)
    # The runtime's usual move: cancel the old timer and schedule the next one in one outcome.
    moved = waiting(instance("i2"), "t2b", at(5))
    commit(store, Outcome(moved.instance, [Cancel("t2"), *moved.commands]))
    assert store.next_due() == at(5)
    assert read(store, lambda tx: list(tx.claim_due_timers(at(10), 10))) == [("i2", "t2b")]
    assert store.next_due() is None


def test_next_due_is_none_without_timers_and_aware(store: Store) -> None:
    assert store.next_due() is None
    commit(store, waiting(instance(), "t1", at(90)))
    due = store.next_due()
    assert due == at(90)
    assert is_utc(due)


# --- prefetch ---------------------------------------------------------------------------------------------------


def test_prefetch_does_not_change_what_reads_see(store: Store) -> None:
    commit(store, Outcome(instance(), [send("m1", when=at(-5))]))
    with store.transaction() as tx:
        tx.put_profile(profile("u1"))
    with store.transaction() as tx:
        tx.prefetch({"u1", "u2", "nobody"}, at(-60))
        tx.prefetch(set(), at(-60))
        assert tx.get_profile("u1") == profile("u1")
        assert tx.get_profile("u2") is None
        assert [i.instance_id for i in tx.active_instances("u1")] == ["i1"]
        assert list(tx.recent_sends("u1", at(-60))) == [SentRecord("push", "marketing", at(-5), "cart")]
        # Writes after the prefetch are seen by later reads in the same transaction.
        tx.put_profile(profile("u2", consents=[consent("sms", True, at(-1))]))
        carry_out(tx, Outcome(instance("i2", user_id="u2"), [send("m2", "u2", when=at(0), instance_id="i2")]))
        assert tx.get_profile("u2") == profile("u2", consents=[consent("sms", True, at(-1))])
        assert [i.instance_id for i in tx.active_instances("u2")] == ["i2"]
        assert list(tx.recent_sends("u2", at(-60))) == [SentRecord("push", "marketing", at(0), "cart")]
        assert tx.latest_message("u2", "push") == "m2"
    assert read(store, lambda tx: tx.latest_message("u2", "push")) == "m2"


# --- transactions: rollback (every backend) and durability (SQL backends) ---------------------------------------


def test_an_exception_rolls_back_every_write(store: Store) -> None:
    commit(store, Outcome(instance("i0", user_id="u0")))
    with pytest.raises(Boom), store.transaction() as tx:
        assert tx.remember_events(["e1"]) == {"e1"}
        tx.put_profile(profile(consents=[consent("sms", True, T0)]))
        carry_out(tx, waiting(instance(), "t1", at(1)))
        carry_out(tx, Outcome(instance(seq=1), [send("m1")]))
        carry_out(tx, Outcome(instance("i0", user_id="u0", status="completed")))
        assert tx.get_instance("i1") is not None
        raise Boom
    with store.transaction() as tx:
        assert tx.remember_events(["e1"]) == {"e1"}
        assert tx.get_profile("u1") is None
        assert tx.get_instance("i1") is None
        assert list(tx.active_instances("u1")) == []
        assert tx.entry_history("cart", "u1", None) is None
        assert list(tx.recent_sends("u1", at(-60))) == []
        assert tx.latest_message("u1", "push") is None
        assert list(tx.claim_due_timers(at(60), 10)) == []
        assert [i.instance_id for i in tx.active_instances("u0")] == ["i0"]
    assert store.next_due() is None


def test_a_rolled_back_claim_leaves_the_timer_due(store: Store) -> None:
    commit(store, waiting(instance(), "t1", at(1)))
    with pytest.raises(Boom), store.transaction() as tx:
        assert list(tx.claim_due_timers(at(5), 10)) == [("i1", "t1")]
        raise Boom
    assert store.next_due() == at(1)
    assert read(store, lambda tx: list(tx.claim_due_timers(at(5), 10))) == [("i1", "t1")]


def test_committed_data_survives_a_restart(reopen: Callable[[], Store]) -> None:
    first = reopen()
    with first.transaction() as tx:
        tx.remember_events(["e1"])
        tx.put_profile(profile(consents=[consent("sms", True, at(-1))]))
        carry_out(tx, waiting(instance(), "t1", at(30)))
        carry_out(tx, Outcome(instance("i2", key="A"), [send("m1", instance_id="i2")]))
        tx.put_engagement("u1", counts("m1", engaged="m1"))
    again = reopen()
    assert again.next_due() == at(30)
    with again.transaction() as tx:
        assert tx.remember_events(["e1", "e2"]) == {"e2"}
        assert tx.get_profile("u1") == profile(consents=[consent("sms", True, at(-1))],
                                               engagement=counts("m1", engaged="m1"))
        assert tx.get_instance("i1") == waiting(instance(), "t1", at(30)).instance
        assert tx.entry_history("cart", "u1", "A") == EntryHistory(True, T0)
        assert list(tx.recent_sends("u1", at(-1))) == [SentRecord("push", "marketing", T0, "cart")]
        assert tx.latest_message("u1", "push") == "m1"
        assert list(tx.claim_due_timers(at(30), 10)) == [("i1", "t1")]


def test_journey_ids_are_every_journey_a_version_was_kept_of(store: Store) -> None:
    """What `GET /v1/journeys` lists removed journeys from: loaded or not, each id once, in order."""
    journeys = cast(HostStore, store).journeys  # every backend is a whole HostStore
    assert journeys.journey_ids() == []
    journeys.save_versions([JourneyVersion("welcome", "v1", "welcome.yaml", "id: welcome", T0),
                            JourneyVersion("cart", "v1", "cart.yaml", "id: cart", T0),
                            JourneyVersion("welcome", "v2", "welcome.yaml", "id: welcome # 2", at(1))])
    assert journeys.journey_ids() == ["cart", "welcome"]
    assert [v.version for v in journeys.journey_versions("welcome")] == ["v1", "v2"]


def test_a_store_says_where_it_is_and_whether_other_workers_share_its_users(store: Store) -> None:
    """What `journey serve` logs as its database, and whether it leases partitions (PostgreSQL only:
    memory and SQLite have one process, which owns every user)."""
    host = cast(HostStore, store)
    shared = host.location.startswith("postgresql")
    assert host.location == "memory" or host.location.startswith("sqlite:///") or shared
    assert (host.partitions is not None) == shared
    if host.partitions is not None:
        # 256 partitions; on Citus its 32 shards of the users' tables (tests/stores/test_citus.py)
        assert host.partitions.count == (32 if host.partitions.partitioning.shards else 256)
        assert host.partitions.worker is None  # no worker id until serve sets one
