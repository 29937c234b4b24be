"""The `Privacy` port on every backend (memory, SQLite cached and not, PostgreSQL): an erasure
removes everything but the proof of past consent, leaves no address in clear anywhere, lets the
person start afresh, and rolls back whole; the consent feed pages in write order."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel

from channels import ConsentRecord, load_policy
from engine.events import Event
from engine.ports import Erasure, HostStore, Store, Tx, carry_out
from engine.runtime import Runtime
from engine.state import Fence, Outcome, Skip
from engine.stores.memory import MemoryStore
from engine.stores.privacy import address_hash
from engine.stores.sql import SqlStore
from tests.stores.conftest import SQL_BACKENDS, sql_url
from tests.stores.test_store_contract import T0, Boom, at, consent, instance, profile, read, send, waiting

PHONE, EMAIL = "+33612345678", "ada@example.com"
RUNTIME = Runtime(load_policy(), trace=False)


def end_all(user_id: str) -> Any:
    """What the host hands `erase_user`: the engine ends the user's active instances."""

    def end(tx: Tx) -> None:
        for active in list(tx.active_instances(user_id)):
            carry_out(tx, RUNTIME.end(active, "exited", "erased", T0))

    return end


def populate(store: HostStore) -> None:
    """ada: a profile with consents, an instance waiting on a timer and a finished one, a message sent
    (with a provider error quoting her number), one pending, a skip with detail, a queued event.
    bob: the same profile shape, one instance, one pending message."""
    with store.transaction() as tx:
        tx.put_profile(profile("ada", consents=[consent("sms", True, at(-60)), consent("email", True, at(-30))],
                               phone=PHONE, email=EMAIL))
        tx.put_profile(profile("bob", consents=[consent("sms", True, at(-50))]))
        carry_out(tx, waiting(instance("i1", user_id="ada"), "t1", at(60)))
        carry_out(tx, Outcome(instance("i0", user_id="ada", journey_id="welcome", status="completed")))
        carry_out(tx, waiting(instance("i2", user_id="bob"), "t2", at(60)))
        carry_out(tx, Outcome(None, [send("m1", user_id="ada", channel="sms"), send("m2", user_id="bob")]))
        carry_out(tx, Outcome(None, [Skip("i1", "ada", "push", "nudge", "template_error", (), T0,
                                          f"{EMAIL} is not a name")]))
        tx.queue_events([Event("cart.abandoned", "ada", T0, {"email": EMAIL}, "e1"),
                         Event("cart.abandoned", "bob", T0, {}, "e2")])
    claimed = store.outbox.claim_outbox(at(1), 10, timedelta(seconds=60), "claim")
    claimed += store.outbox.claim_outbox(at(1), 10, timedelta(seconds=60), "claim")  # on Citus: the other shard's
    [leased] = [i for i in claimed if i.user_id == "ada"]
    store.outbox.finish_outbox([{"message_id": leased.message_id, "dispatch": "failed", "status": "failed",
                                 "attempts": 1, "next_attempt_at": None, "provider": "twilio", "provider_id": "SM1",
                                 "error": f"21211: invalid 'To' number {PHONE}", "at": at(1)}],
                               Fence("claim", at(1), at(61)))
    with store.transaction() as tx:
        carry_out(tx, Outcome(None, [send("m3", user_id="ada", when=at(2))]))


def held_text(store: HostStore) -> str:
    """Everything the store holds, as text: every row of every table, or the memory store's state."""
    if isinstance(store, MemoryStore):
        return repr(vars(store))
    sql = cast(SqlStore, store)
    with sql.engine.connect() as conn:
        return repr([list(conn.execute(select(table))) for table in SQLModel.metadata.sorted_tables])


def test_an_erasure_keeps_only_the_proof_of_consent_and_no_address_in_clear(store: Store) -> None:
    host = cast(HostStore, store)
    populate(host)
    erasure = host.privacy.erase_user("ada", at(5), end_all("ada"))
    assert erasure == Erasure(instances=2, queued=1, messages=2, cancelled=1)

    assert read(store, lambda tx: (tx.get_profile("ada"), tx.active_instances("ada"),
                                   tx.entry_history("cart", "ada", None))) == (None, [], None)
    assert host.views.instances_for_user("ada") == []
    assert host.views.users_by_phone(PHONE) == []
    messages = {m["message_id"]: m for m in host.views.messages_for_user("ada")}
    assert {k: (m["content"], m["dispatch"], m["status"], m["error"]) for k, m in messages.items()} == {
        "m1": ({}, "failed", "failed", "erased"), "m3": ({}, "cancelled", "cancelled", "erased")}
    assert [s["detail"] for s in host.views.skips_for_user("ada")] == [None]
    with store.transaction() as tx:
        assert [e.user_id for e in tx.claim_queued(10)] == ["bob"]
        assert tx.due_timer_users(at(120), 10) == {"bob"}, "ada's timer was cancelled"
    text = held_text(host)
    assert PHONE not in text and EMAIL not in text
    # the proof: the ledger under the same id, in the audit trail too
    assert [(r.channel, r.granted) for r in host.privacy.consent_ledger("ada")] == [("sms", True), ("email", True)]
    assert [(e.user_id, e.record.channel) for e in host.privacy.consent_feed(None, 0, 10)] == [
        ("ada", "sms"), ("ada", "email"), ("bob", "sms")]
    # bob is untouched
    assert read(store, lambda tx: tx.get_profile("bob")) == profile("bob", consents=[consent("sms", True, at(-50))])
    assert [(m["content"], m["dispatch"]) for m in host.views.messages_for_user("bob")] == [
        (dict(send("m2").content), "leased")]


def test_the_erased_person_starts_afresh_and_their_old_consent_does_not_count(store: Store) -> None:
    host = cast(HostStore, store)
    populate(host)
    read(store, lambda tx: tx.get_profile("ada"))  # cached, on the SQLite store that caches
    assert host.privacy.erase_user("ada", at(5), end_all("ada")) is not None
    later = ConsentRecord("push", "marketing", True, "app", at(10))
    with store.transaction() as tx:
        assert tx.get_profile("ada") is None
        tx.put_profile(replace(profile("ada", phone=None, email=None), consents=(later,)))
        carry_out(tx, Outcome(instance("i9", user_id="ada", entered_at=at(10))))
    loaded = read(store, lambda tx: tx.get_profile("ada"))
    assert loaded is not None and loaded.consents == (later,)
    assert read(store, lambda tx: tx.entry_history("cart", "ada", None)) is not None
    assert [r.channel for r in host.privacy.consent_ledger("ada")] == ["sms", "email", "push"]


def test_erasing_nobody_writes_nothing_and_erasing_twice_answers_the_same(store: Store) -> None:
    host = cast(HostStore, store)
    assert host.privacy.erase_user("nobody", T0, end_all("nobody")) is None
    populate(host)
    assert host.privacy.erase_user("ada", at(5), end_all("ada")) is not None
    again = host.privacy.erase_user("ada", at(6), end_all("ada"))
    assert again is not None and (again.instances, again.queued, again.cancelled) == (0, 0, 0)
    assert host.privacy.erase_user("nobody", at(7), end_all("nobody")) is None


def test_a_failed_erasure_changes_nothing(store: Store) -> None:
    host = cast(HostStore, store)
    populate(host)

    def fail(tx: Tx) -> None:
        end_all("ada")(tx)
        raise Boom

    with pytest.raises(Boom):
        host.privacy.erase_user("ada", at(5), fail)
    kept = read(store, lambda tx: (tx.get_profile("ada"), [i.instance_id for i in tx.active_instances("ada")]))
    assert kept[0] is not None and kept[0].phone == PHONE and kept[1] == ["i1"]
    kept_content = {m["message_id"]: m["content"] != {} for m in host.views.messages_for_user("ada")}
    assert kept_content == {"m1": True, "m3": True}
    assert read(store, lambda tx: tx.due_timer_users(at(120), 10)) == {"ada", "bob"}


@pytest.fixture(params=SQL_BACKENDS)
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    """SQL only: the memory store's salt is per store; the SQL store's is in `meta`."""
    made = SqlStore(sql_url(request.param, request, tmp_path))
    yield made
    made.close()


def test_the_sql_proof_holds_the_addresses_hashed_under_the_databases_salt(sql_store: SqlStore) -> None:
    store = sql_store
    populate(store)
    store.privacy.erase_user("ada", at(5), end_all("ada"))
    with store.engine.connect() as conn:
        salt = conn.exec_driver_sql("SELECT value FROM meta WHERE key = 'erasure_salt'").scalar_one()
        row = conn.exec_driver_sql("SELECT user_id, phone_sha256, email_sha256 FROM erasures").one()
    assert tuple(row) == ("ada", address_hash(salt, PHONE), address_hash(salt, EMAIL))


def test_the_feed_pages_in_write_order_and_filters_on_the_records_time(store: Store) -> None:
    host = cast(HostStore, store)
    for n in range(5):
        with store.transaction() as tx:
            tx.put_profile(profile(f"u{n}", consents=[consent("sms", True, at(n)), consent("email", True, at(-n))]))
    first = host.privacy.consent_feed(None, 0, 4)
    rest = host.privacy.consent_feed(None, first[-1].position, 100)
    rows = [(e.user_id, e.record.channel) for e in first + rest]
    assert rows == [(f"u{n}", c) for n in range(5) for c in ("sms", "email")]
    assert len({e.position for e in first + rest}) == 10
    recent = host.privacy.consent_feed(at(2), 0, 100)
    assert [(e.user_id, e.record.channel) for e in recent] == [("u2", "sms"), ("u3", "sms"), ("u4", "sms")]
    assert host.privacy.consent_feed(None, rest[-1].position, 100) == []
