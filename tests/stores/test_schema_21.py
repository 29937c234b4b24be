"""Schema 21: a database the previous release made (schema 20, from its DDL snapshot), with rows in
every per-user table, opened by this release: every row is still there and read back as before,
every per-user table's primary key starts with `user_id`, and the ledgers keep numbering after
their last row (an erasure's proof compares numbers)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from channels import ConsentRecord, Profile
from engine.stores.sql import SqlStore
from engine.stores.sql.migrate import per_user_tables
from tests.stores.conftest import SQL_BACKENDS, made_by_version_20, sql_url

AT = "2026-01-05 10:00:00"
ROWS = {  # table -> rows as the previous release wrote them (numbered ledgers with gaps in their ids)
    "profiles": ["(user_id, doc) VALUES ('u1', '{\"user_id\": \"u1\", \"timezone\": \"UTC\"}')"],
    "consents": [f"(id, user_id, seq, channel, category, granted, at) VALUES (7, 'u1', 0, 'sms', 'marketing', "
                 f"TRUE, '{AT}')",
                 f"(id, user_id, seq, channel, category, granted, at) VALUES (9, 'u2', 0, 'sms', 'marketing', "
                 f"FALSE, '{AT}')"],
    "instances": [f"(instance_id, journey_id, version, user_id, status, entered_at, doc) VALUES ('i1', 'cart', "
                  f"'v1', 'u1', 'done', '{AT}', '{{}}')"],
    "timers": [f"(timer_id, instance_id, due, user_id, part) VALUES ('t1', 'i1', '{AT}', 'u1', 3)"],
    "messages": [f"(message_id, user_id, message, channel, category, content, cost, decisions, at, status, "
                 f"dispatch, attempts, tally, engaged) VALUES ('m1', 'u1', 'hello', 'sms', 'marketing', '{{}}', 0.01, "
                 f"'[]', '{AT}', 'delivered', 'sent', 1, '2026-01-05T10', '')"],
    "skips": [f"(id, instance_id, user_id, step, message, reason, decisions, at) VALUES (4, 'i1', 'u1', 's', 'hello', "
              f"'consent', '[]', '{AT}')"],
    "links": [f"(code, message_id, user_id, channel, url, position, at, hits, machine_hits) VALUES ('abc', 'm1', "
              f"'u1', 'sms', 'https://example.com', 0, '{AT}', 2, 0)"],
    "feed_states": [f"(message_id, user_id, seen_at) VALUES ('m1', 'u1', '{AT}')"],
    "recent": [f"(id, user_id, kind, name, at, expires_at) VALUES (5, 'u1', 'event', 'cart.viewed', '{AT}', "
               f"'2099-01-01 00:00:00')"],
    "erasures": [f"(id, user_id, at, consents_through) VALUES (2, 'u3', '{AT}', 1)"],
}


@pytest.fixture(params=SQL_BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return sql_url(request.param, request, tmp_path)


def _count(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t: int(conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one()) for t in ROWS}
    finally:
        engine.dispose()


def test_a_database_version_20_made_keeps_its_rows_and_gets_keys_that_start_with_the_user(url: str) -> None:
    made_by_version_20(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        for table, rows in ROWS.items():
            for row in rows:
                conn.exec_driver_sql(f"INSERT INTO {table} {row}")
    engine.dispose()
    before = _count(url)

    store = SqlStore(url)
    try:
        assert _count(url) == before
        keys = inspect(store.engine)
        for table in per_user_tables():
            assert keys.get_pk_constraint(table.name)["constrained_columns"][0] == "user_id", table.name
        assert {t.name for t in per_user_tables()} >= {"consents", "instances", "timers", "messages", "skips",
                                                       "links", "feed_states", "recent", "erasures"}
        assert store.views.messages_for_user("u1")[0]["message_id"] == "m1"
        assert store.views.skips_for_user("u1")[0]["reason"] == "consent"
        with store.transaction() as tx:
            tx.prefetch(["u1"], datetime(2026, 1, 1, tzinfo=UTC))
            profile = tx.get_profile("u1")
            assert profile is not None and [c.granted for c in profile.consents] == [True]
            tx.put_profile(Profile("u1", "UTC", consents=(*profile.consents, ConsentRecord(
                "sms", "marketing", False, "api", datetime(2026, 2, 1, tzinfo=UTC)))))
        with store.engine.connect() as conn:
            ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM consents WHERE user_id = 'u1' ORDER BY seq")]
        assert ids[0] == 7 and ids[1] > 9  # the new row numbered after every row the old release wrote
    finally:
        store.close()
    reopened = SqlStore(url)  # opened again: nothing left to migrate, nothing lost
    try:
        assert _count(url) == {**before, "consents": before["consents"] + 1}
    finally:
        reopened.close()
