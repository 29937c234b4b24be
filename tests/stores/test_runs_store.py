"""Audience runs on every store: one run per journey and occurrence, kept and read back as written;
the profiles in user_id order after a cursor; a lease held by one owner until it runs out; a
chunk's run row written with its transaction or not at all."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from channels import ConsentRecord, Profile
from engine.ports import HostStore
from engine.runs import CANCELLED, FINISHED, RUNNING, AudienceRun

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def run(run_id: str = "r1", journey_id: str = "flash", trigger: str = "at", at: datetime = AT, **changes: Any,
        ) -> AudienceRun:
    return AudienceRun(run_id=run_id, journey_id=journey_id, version="v1", trigger=trigger, scheduled_at=at,
                       created_at=at + timedelta(seconds=1), **changes)


@pytest.fixture
def host(store: Any) -> HostStore:
    runs_store: HostStore = store  # every backend is a whole HostStore
    return runs_store


def test_a_run_is_kept_and_read_back_as_written(host: HostStore) -> None:
    written = run(missed=2, skipped={"re_entry": 3}, cursor="u9", matched=4, entered=1, profiles=9,
                  status=RUNNING, started_at=AT + timedelta(seconds=2))
    assert host.runs.add_run(written)
    assert host.runs.get_run("r1") == written
    assert host.runs.get_run("nope") is None


def test_one_run_per_journey_and_scheduled_instant_but_any_number_by_hand(host: HostStore) -> None:
    assert host.runs.add_run(run("r1"))
    assert not host.runs.add_run(run("r2"))  # the same instant of the same journey: a second worker, a restart
    assert host.runs.add_run(run("r3", journey_id="other"))
    assert host.runs.add_run(run("r4", trigger="manual")) and host.runs.add_run(run("r5", trigger="manual"))
    assert [r.run_id for r in host.runs.runs_of("flash")] == ["r5", "r4", "r1"]  # the same instant: latest id first
    assert host.runs.get_run("r2") is None


def test_the_latest_scheduled_run_ignores_runs_by_hand(host: HostStore) -> None:
    host.runs.add_run(run("r1", trigger="schedule", at=AT))
    host.runs.add_run(run("r2", trigger="schedule", at=AT + timedelta(days=7)))
    host.runs.add_run(run("r3", trigger="manual", at=AT + timedelta(days=9)))
    latest = host.runs.latest_scheduled_run("flash")
    assert latest is not None and latest.run_id == "r2"
    assert host.runs.latest_scheduled_run("other") is None


def test_a_lease_keeps_a_run_to_its_owner_until_it_runs_out(host: HostStore) -> None:
    host.runs.add_run(run("r1"))
    claimed = host.runs.claim_run("w1", {"flash"}, AT, LEASE)
    assert claimed is not None and claimed.status == RUNNING and claimed.lease_owner == "w1"
    assert claimed.started_at == AT and claimed.lease_until == AT + LEASE
    assert host.runs.claim_run("w2", {"flash"}, AT + timedelta(seconds=10), LEASE) is None
    renewed = host.runs.claim_run("w1", {"flash"}, AT + timedelta(seconds=10), LEASE)
    assert renewed is not None and renewed.lease_until == AT + timedelta(seconds=10) + LEASE
    taken = host.runs.claim_run("w2", {"flash"}, AT + timedelta(seconds=41), LEASE)
    assert taken is not None and taken.lease_owner == "w2" and taken.started_at == AT
    assert host.runs.claim_run("w1", {"other"}, AT + timedelta(days=1), LEASE) is None
    host.runs.release_runs()
    released = host.runs.get_run("r1")
    assert released is not None and released.lease_owner is None
    assert host.runs.claim_run("w3", {"flash"}, AT + timedelta(seconds=42), LEASE) is not None


def test_finished_runs_are_not_claimed_and_ending_a_journeys_runs_ends_only_those_working(host: HostStore) -> None:
    host.runs.add_run(run("r1", status=FINISHED))
    host.runs.add_run(run("r2", at=AT + timedelta(hours=1)))
    assert host.runs.end_runs("flash", CANCELLED, "journey stopped", AT) == 1
    assert host.runs.claim_run("w1", {"flash"}, AT, LEASE) is None
    ended = host.runs.get_run("r2")
    assert ended is not None and ended.status == CANCELLED and ended.error == "journey stopped"
    assert ended.finished_at == AT


def test_profiles_come_in_user_id_order_after_the_cursor_without_consents(host: HostStore) -> None:
    consent = ConsentRecord("sms", "marketing", True, "test", AT)
    with host.transaction() as tx:
        tx.prefetch(["b", "a", "c", "d"], AT)
        for user in ("b", "a", "d", "c"):
            tx.put_profile(Profile(user, "UTC", phone="+14155550100", attributes={"n": user}, consents=(consent,)))
    with host.transaction() as tx:
        first = tx.profiles_after(None, 3)
        rest = tx.profiles_after("c", 3)
    assert [p.user_id for p in first] == ["a", "b", "c"] and [p.user_id for p in rest] == ["d"]
    assert first[1].attributes == {"n": "b"} and first[1].phone == "+14155550100" and first[1].consents == ()


def test_a_chunk_saves_its_run_with_its_transaction_or_not_at_all(host: HostStore) -> None:
    host.runs.add_run(run("r1"))
    with host.transaction() as tx:
        locked = tx.lock_run("r1")
        assert locked is not None
        tx.save_run(replace(locked, cursor="u5", entered=5, status=RUNNING))
    with pytest.raises(RuntimeError), host.transaction() as tx:
        locked = tx.lock_run("r1")
        assert locked is not None
        tx.save_run(replace(locked, cursor="u9", entered=9))
        raise RuntimeError("crash before commit")
    kept = host.runs.get_run("r1")
    assert kept is not None and (kept.cursor, kept.entered) == ("u5", 5)
