"""The phone suppression list, on every backend: a STOP suppresses a number from its first STOP
on, a START lifts it, a rolled-back transaction leaves no trace, and a batch's numbers are known
after one prefetch (the cache on SQLite is never ahead of the database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from channels import Profile
from engine.ports import HostStore

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
PHONE = "+14155550100"


class Boom(Exception):
    pass


def since(store: HostStore, phone: str = PHONE) -> datetime | None:
    with store.transaction() as tx:
        return tx.suppressed_since(phone)


def test_stop_suppresses_from_the_first_stop_and_start_lifts_it(store: HostStore) -> None:
    assert since(store) is None
    with store.transaction() as tx:
        tx.record_suppression(PHONE, "STOP", T0, "twilio:SM1")
        assert tx.suppressed_since(PHONE) == T0
    with store.transaction() as tx:
        tx.record_suppression(PHONE, "STOP", T0 + timedelta(hours=1), "twilio:SM2")
    assert since(store) == T0
    assert store.outbox.suppressions({PHONE, "+14155550199"}) == {PHONE: T0}
    with store.transaction() as tx:
        tx.record_suppression(PHONE, "START", T0 + timedelta(hours=2), "twilio:SM3")
    assert since(store) is None and store.outbox.suppressions({PHONE}) == {}


def test_a_rolled_back_stop_leaves_no_suppression(store: HostStore) -> None:
    with pytest.raises(Boom), store.transaction() as tx:
        tx.record_suppression(PHONE, "STOP", T0, "twilio:SM1")
        raise Boom
    assert since(store) is None and store.outbox.suppressions({PHONE}) == {}


def test_the_numbers_of_a_batch_are_known_after_its_prefetch(store: HostStore) -> None:
    with store.transaction() as tx:
        for n in range(3):
            tx.put_profile(Profile(f"u{n}", phone=f"+1415555010{n}"))
        tx.record_suppression("+14155550101", "STOP", T0, "api")
    with store.transaction() as tx:
        tx.prefetch(["u0", "u1", "u2"], T0 - timedelta(days=7))
        seen = {n: tx.suppressed_since(f"+1415555010{n}") for n in range(3)}
    assert seen == {0: None, 1: T0, 2: None}
    assert store.outbox.recipients({"u1", "nobody"}) == {"u1": Profile("u1", phone="+14155550101")}
