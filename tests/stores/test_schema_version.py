"""The schema version kept in `meta`: an older database is upgraded on open, a newer one refused."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine, insert, inspect, select, update

from channels import ChannelEngagement
from channels.links import TrackedLink
from engine.events import Event
from engine.ports import JourneyVersion, carry_out
from engine.state import Fence, Outcome, partition_of
from engine.stores.sql import SqlStore, StoreError, claim_sql
from engine.stores.sql.schema import META, PROFILES, SCHEMA_VERSION
from tests.stores.conftest import SQL_BACKENDS, made_by_version_20, sql_url
from tests.stores.test_store_contract import send

URL = "https://shop.example.com/cart?id=42"


def _set_version(url: str, version: int) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(update(META).where(META.c.key == "schema_version").values(value=str(version)))
    engine.dispose()


def _version(store: SqlStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(META.c.value).where(META.c.key == "schema_version")).scalar_one())


OLD_INDEXES = {"ix_messages_dispatch": "messages (dispatch, next_attempt_at)",
               "ix_messages_provider_id": "messages (provider_id)",
               "ix_instances_user_status": "instances (user_id, status)",
               "ix_instances_journey_status": "instances (journey_id, status)"}
NEW_INDEXES = {"ix_messages_pending", "ix_messages_sending", "ix_messages_leased", "ix_messages_provider",
               "ix_instances_user", "ix_instances_journey", "ix_profiles_phone"}


def _indexes(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        found = inspect(engine)
        tables = ("messages", "instances", "profiles")
        return {i["name"] for table in tables for i in found.get_indexes(table) if i["name"]}
    finally:
        engine.dispose()


@pytest.fixture(params=SQL_BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return sql_url(request.param, request, tmp_path)


def _pending_message(conn: Connection) -> None:
    """Message m1 to u1, pending, written as an older version wrote its row."""
    conn.exec_driver_sql("INSERT INTO messages (message_id, user_id, message, channel, category, content, cost, "
                         "decisions, at, status, dispatch, next_attempt_at, attempts) VALUES ('m1', 'u1', 'hi', "
                         "'sms', 'transactional', '{}', 0, '[]', '2026-01-05 10:00:00', 'queued', 'pending', "
                         "'2026-01-05 10:00:00', 0)")


def test_a_version_1_database_is_upgraded_in_place(url: str) -> None:
    """Made as version 1 made it (its indexes, no phone column, no inbox, its version), with a
    profile in it, then opened: current indexes, the phone copied out of the document, an
    inbox that takes events, the new version."""
    made_by_version_20(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        for name in NEW_INDEXES:
            conn.exec_driver_sql(f"DROP INDEX {name}")
        for name, target in OLD_INDEXES.items():
            conn.exec_driver_sql(f"CREATE INDEX {name} ON {target}")
        conn.exec_driver_sql("ALTER TABLE profiles DROP COLUMN phone")
        conn.exec_driver_sql("DROP TABLE inbox")
        conn.exec_driver_sql("DROP TABLE journey_versions")
        conn.exec_driver_sql("DROP TABLE journey_states")
        conn.exec_driver_sql("DROP TABLE suppressions")
        conn.exec_driver_sql("DROP TABLE suppressed_numbers")
        conn.exec_driver_sql("DROP TABLE erasures")
        conn.exec_driver_sql("DROP TABLE runs")
        conn.exec_driver_sql("DROP TABLE links")
        conn.exec_driver_sql("DROP TABLE recent")
        conn.exec_driver_sql("DROP TABLE feed_states")
        conn.exec_driver_sql("DROP TABLE journey_counters")
        conn.exec_driver_sql("ALTER TABLE messages DROP COLUMN tally")
        conn.execute(insert(PROFILES).values(user_id="u1", doc={"user_id": "u1", "phone": "+14155550100"}))
    engine.dispose()
    _set_version(url, 1)
    assert NEW_INDEXES.isdisjoint(_indexes(url)) and set(OLD_INDEXES) <= _indexes(url)
    store = SqlStore(url)
    assert _version(store) == SCHEMA_VERSION == 22
    assert _indexes(url) >= NEW_INDEXES and set(OLD_INDEXES).isdisjoint(_indexes(url))
    assert store.views.users_by_phone("+14155550100") == ["u1"] and store.views.users_by_phone("+14155550199") == []
    with store.transaction() as tx:
        tx.queue_events([Event("cart.abandoned", "u1", datetime(2026, 1, 5, tzinfo=UTC), {"cart": 1}, "e1")])
    with store.transaction() as tx:
        assert [e.id for e in tx.claim_queued(10)] == ["e1"]
    store.journeys.set_journey_state("cart", "paused", datetime(2026, 1, 5, tzinfo=UTC))  # version 6's tables exist
    assert store.journeys.journey_states() == {"cart": "paused"} and store.journeys.journey_versions("cart") == []
    assert store.outbox.suppressions({"+14155550100"}) == {}  # version 7's tables exist
    assert store.privacy.erase_user("u1", datetime(2026, 1, 5, tzinfo=UTC), lambda tx: None) is not None  # 9's and 13's
    assert store.views.users_by_phone("+14155550100") == []
    assert store.runs.runs_of("cart") == [] and store.runs.claim_run("w1", {"cart"}, datetime(2026, 1, 5, tzinfo=UTC),
                                                           timedelta(seconds=30)) is None  # version 10's
    assert store.links.hit("X7bQ2mKp9Z", False, False, datetime(2026, 1, 5, tzinfo=UTC)) is None  # version 14's
    assert store.feed.feed_items("u1", None, 10) == [] and store.feed.feed_unread("u1") == 0  # version 17's
    store.close()


def test_a_version_10_database_gets_partitions_for_its_timers_and_queued_events(url: str) -> None:
    """Made as version 10 made it (timers without user and partition, an inbox without partition),
    with a waiting timer and a queued event in it: opened, both carry their user's partition, so
    that the worker owning the user finds them."""
    made_by_version_20(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(update(META).where(META.c.key == "schema_version").values(value="10"))
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_inbox_part_seq")
        conn.exec_driver_sql("ALTER TABLE timers DROP COLUMN part")
        conn.exec_driver_sql("ALTER TABLE timers DROP COLUMN user_id")
        conn.exec_driver_sql("ALTER TABLE inbox DROP COLUMN part")
        conn.exec_driver_sql("INSERT INTO instances (instance_id, journey_id, version, user_id, status, entered_at, "
                             "doc) VALUES ('i1', 'cart', 'v1', 'user-7', 'active', '2026-01-05 10:00:00', '{}')")
        conn.exec_driver_sql("INSERT INTO timers (timer_id, instance_id, due) VALUES "
                             "('t1', 'i1', '2026-01-05 11:00:00')")
        conn.exec_driver_sql("INSERT INTO inbox (event_id, user_id, type, at, properties) VALUES "
                             "('e1', 'user-9', 'cart.abandoned', '2026-01-05 10:00:00', '{}')")
    engine.dispose()
    store = SqlStore(url)
    try:
        assert _version(store) == SCHEMA_VERSION
        with store.engine.connect() as conn:
            assert tuple(conn.exec_driver_sql("SELECT user_id, part FROM timers").one()) == \
                ("user-7", partition_of("user-7"))
            assert conn.exec_driver_sql("SELECT part FROM inbox").scalar_one() == partition_of("user-9")
    finally:
        store.close()


def test_a_version_11_database_gets_the_outbox_claim_column_and_its_messages_go_out(url: str) -> None:
    """Made as version 11 made it (messages without `claim`), with one message pending: opened, it
    is claimed, marked `sending` and recorded under a claim token as any other."""
    made_by_version_20(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(update(META).where(META.c.key == "schema_version").values(value="11"))
        conn.exec_driver_sql("ALTER TABLE messages DROP COLUMN claim")
        _pending_message(conn)
    engine.dispose()
    store = SqlStore(url)
    try:
        assert _version(store) == SCHEMA_VERSION
        now = datetime(2026, 1, 5, 10, 1, tzinfo=UTC)
        assert [i.message_id for i in store.outbox.claim_outbox(now, 10, timedelta(seconds=60), "t")] == ["m1"]
        fence = Fence("t", now, now + timedelta(seconds=60))
        assert store.outbox.finish_outbox([], fence, sending=["m1"]) == {"m1"}
    finally:
        store.close()


@pytest.mark.parametrize("version", [12, 13])
def test_a_version_12_database_gets_the_links_table_and_keeps_its_messages(url: str, version: int) -> None:
    """Made as version 12 made it (no links table), with a message in it: opened, the message is
    still there without links, and a new message's tracked link is kept and counts its hits. A
    database at 13 (the version before the links table, whatever else it added) comes up alike."""
    made_by_version_20(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(update(META).where(META.c.key == "schema_version").values(value=str(version)))
        conn.exec_driver_sql("DROP TABLE links")
        _pending_message(conn)
    engine.dispose()
    store = SqlStore(url)
    try:
        assert _version(store) == SCHEMA_VERSION
        assert [(m["message_id"], m["links"]) for m in store.views.messages_for_user("u1")] == [("m1", [])]
        now = datetime(2026, 1, 5, 10, 1, tzinfo=UTC)
        with store.transaction() as tx:
            carry_out(tx, Outcome(None, [send("m2", user_id="u1", links=(TrackedLink("X7bQ2mKp9Z", URL),))]))
        hit = store.links.hit("X7bQ2mKp9Z", False, False, now)
        assert hit is not None and (hit.message_id, hit.url, hit.hits, hit.first) == ("m2", URL, 1, True)
    finally:
        store.close()


@pytest.mark.parametrize("version", [12, 17])
def test_an_older_database_gets_engagement_and_choices_and_keeps_its_profiles(url: str, version: int) -> None:
    """Made as version 12 made it, or 17 (the changes numbered 13 to 17 landed first) — profiles
    without `engagement`, messages without `choice` — with a profile and a message in it: opened,
    the profile reads back with no counts, the engine's counts are kept and read back, and the
    message lists with no choice."""
    made_by_version_20(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(update(META).where(META.c.key == "schema_version").values(value=str(version)))
        conn.exec_driver_sql("ALTER TABLE profiles DROP COLUMN engagement")
        conn.exec_driver_sql("ALTER TABLE messages DROP COLUMN choice")
        conn.execute(insert(PROFILES).values(user_id="u1", doc={"user_id": "u1", "push_token": "tok"}))
        conn.exec_driver_sql("INSERT INTO messages (message_id, user_id, message, channel, category, content, cost, "
                             "decisions, at, status, dispatch, next_attempt_at, attempts) VALUES ('m1', 'u1', 'hi', "
                             "'push', 'transactional', '{}', 0, '[]', '2026-01-05 10:00:00', 'sent', 'sent', "
                             "'2026-01-05 10:00:00', 1)")
    engine.dispose()
    store = SqlStore(url)
    try:
        assert _version(store) == SCHEMA_VERSION
        at = datetime(2026, 1, 5, 10, tzinfo=UTC)
        with store.transaction() as tx:
            tx.prefetch({"u1"}, at)
            profile = tx.get_profile("u1")
            assert profile is not None and profile.engagement is None and profile.to_dict()["engagement"] == {}
            tx.put_engagement("u1", {"push": ChannelEngagement().after_send("m1", at, timedelta(days=30))})
        assert [m["choice"] for m in store.views.messages_for_user("u1")] == [None]
    finally:
        store.close()
    store = SqlStore(url)
    try:
        with store.transaction() as tx:
            tx.prefetch({"u1"}, at)
            profile = tx.get_profile("u1")
            assert profile is not None and profile.to_dict()["engagement"]["push"]["sent"] == 1
    finally:
        store.close()


ADDED = {15: ("ALTER TABLE messages DROP COLUMN locale",), 16: ("ALTER TABLE journey_versions DROP COLUMN templates",),
         17: ("DROP TABLE feed_states",),
         18: ("ALTER TABLE profiles DROP COLUMN engagement", "ALTER TABLE messages DROP COLUMN choice")}
"""What versions 15 to 18 added, each undone by these statements."""


def _missing(version: int) -> list[str]:
    """What a database of `version` lacks of 15 to 18, undone: what came after it, but for 18, which
    landed before 15 to 17 (a database 18 made has its own columns and none of theirs)."""
    later = [15, 16, 17] if version == 18 else [n for n in ADDED if n > version]
    return [statement for n in later for statement in ADDED[n]]


def _made_as(url: str, version: int, *statements: str, pending: bool = False) -> None:
    """A database as `version` made it: made as the current one, its version set back, what it lacks
    undone, then `statements` run (rows put in); `pending`: with message m1 as that version wrote it."""
    made_by_version_20(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(update(META).where(META.c.key == "schema_version").values(value=str(version)))
        for statement in (*_missing(version), *statements):
            conn.exec_driver_sql(statement)
        if pending:
            _pending_message(conn)
    engine.dispose()


@pytest.mark.parametrize("version", [12, 14, 18])
def test_an_older_database_gets_the_messages_locale_column_and_keeps_its_messages(url: str, version: int) -> None:
    """Made as version 12, 14 or 18 made it (messages without `locale`), with one message in it:
    opened, the old message reads as sent from the default content, and a new one records its variant."""
    _made_as(url, version, pending=True)
    store = SqlStore(url)
    try:
        assert _version(store) == SCHEMA_VERSION
        with store.transaction() as tx:
            carry_out(tx, Outcome(None, [replace(send("m2", user_id="u1"), locale="fr")]))
        assert {m["message_id"]: m["locale"] for m in store.views.messages_for_user("u1")} == {"m1": None, "m2": "fr"}
    finally:
        store.close()


@pytest.mark.parametrize("version", [15, 18])
def test_an_older_database_keeps_its_journey_versions_and_stores_their_templates(url: str, version: int) -> None:
    """Made as version 15 or 18 made it (journey_versions without `templates`), with a version in it:
    opened, that version reads back with no templates, and a new one keeps the partials it uses."""
    _made_as(url, version, "INSERT INTO journey_versions (journey_id, version, file, source, first_loaded_at) "
                           "VALUES ('cart', 'v1', 'cart.yaml', 'id: cart', '2026-01-05 10:00:00')")
    store = SqlStore(url)
    try:
        assert _version(store) == SCHEMA_VERSION
        store.journeys.save_versions([JourneyVersion("cart", "v2", "cart.yaml", "id: cart",
                                                     datetime(2026, 1, 6, tzinfo=UTC),
                                                     {"footer.sms": "Reply STOP to opt out"})])
        assert [(v.version, dict(v.templates)) for v in store.journeys.journey_versions("cart")] == [
            ("v1", {}), ("v2", {"footer.sms": "Reply STOP to opt out"})]
    finally:
        store.close()


@pytest.mark.parametrize("version", [16, 18])
def test_an_older_database_gets_the_feed_and_its_in_app_messages_are_in_it(url: str, version: int) -> None:
    """Made as version 16 or 18 made it (no `feed_states`), with an in-app message sent before: opened,
    the message is in the person's feed, unread, and reading it is kept."""
    _made_as(url, version,
             "INSERT INTO messages (message_id, user_id, message, channel, category, content, cost, decisions, at, "
             "status, dispatch, next_attempt_at, attempts) VALUES ('m1', 'u1', 'hi', 'in_app', 'transactional', "
             "'{\"title\": \"Hi\"}', 0, '[]', '2026-01-05 10:00:00', 'sent', 'sent', '2026-01-05 10:00:00', 1)")
    store = SqlStore(url)
    try:
        assert _version(store) == SCHEMA_VERSION
        assert [r["message_id"] for r in store.feed.feed_items("u1", None, 10)] == ["m1"]
        assert store.feed.feed_unread("u1") == 1
        read = datetime(2026, 1, 5, 11, tzinfo=UTC)
        assert store.feed.mark_feed("u1", ["m1"], "read", read) == ["m1"]
        assert store.feed.feed_unread("u1") == 0
        assert store.feed.feed_items("u1", None, 10)[0]["read_at"] == read
    finally:
        store.close()


def test_the_outbox_claim_reads_only_the_partial_index_of_pending_messages(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/journey.db"
    SqlStore(url).close()
    with sqlite3.connect(tmp_path / "journey.db") as conn:
        plan = " ".join(str(r) for r in conn.execute("EXPLAIN QUERY PLAN " + claim_sql("sqlite", 500), ("2026",)))
    assert "ix_messages_pending" in plan, plan


def test_a_newer_database_is_refused_with_both_versions_named(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/journey.db"
    SqlStore(url).close()
    _set_version(url, SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1} is newer .*\\({SCHEMA_VERSION}\\)"):
        SqlStore(url)


def test_stores_opened_at_the_same_moment_on_an_empty_postgresql_database_all_open(
        postgres_fresh_db_url: str) -> None:
    """Four processes' first open of a new database, at once (threads past one barrier): the
    schema is created once, one after the other, and every open succeeds."""
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_store() -> None:
        barrier.wait()
        try:
            SqlStore(postgres_fresh_db_url).close()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    store = SqlStore(postgres_fresh_db_url)
    assert _version(store) == SCHEMA_VERSION
    store.close()
