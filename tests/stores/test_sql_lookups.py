"""Lookups the webhooks make: the sender of an inbound SMS by phone number, on both databases."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from channels import Profile
from engine.stores.sql import SqlStore
from tests.stores.conftest import SQL_BACKENDS, sql_url


@pytest.fixture(params=SQL_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    made = SqlStore(sql_url(request.param, request, tmp_path))
    yield made
    made.close()


def test_the_sender_of_an_sms_follows_profile_changes(store: SqlStore) -> None:
    with store.transaction() as tx:
        tx.put_profile(Profile("u1", phone="+14155550100"))
        tx.put_profile(Profile("u2", phone="+14155550111"))
    assert store.views.users_by_phone("+14155550100") == ["u1"]
    with store.transaction() as tx:
        profile = tx.get_profile("u1")
        assert profile is not None
        tx.put_profile(replace(profile, phone="+14155550122"))
    assert store.views.users_by_phone("+14155550100") == []
    assert store.views.users_by_phone("+14155550122") == ["u1"]
    assert store.views.users_by_phone("+14155550111") == ["u2"]


def test_finding_the_sender_reads_the_phone_index_not_every_profile(tmp_path: Path) -> None:
    SqlStore(f"sqlite:///{tmp_path}/journey.db").close()
    with sqlite3.connect(tmp_path / "journey.db") as conn:
        plan = str(conn.execute("EXPLAIN QUERY PLAN SELECT user_id FROM profiles WHERE phone = ? LIMIT 1",
                                ("+1",)).fetchall())
    assert "ix_profiles_phone" in plan, plan
