"""How the PostgreSQL store uses its pooled connections: a connection that sat idle is pinged
and, if its server process is gone, replaced without the caller noticing; a busy one is not
pinged at all (a ping is a round trip in front of every transaction, a quarter of a busy
worker's statements); a read is one statement, outside any transaction. Each on a real server,
whose backends another connection terminates as a restart or an idle timeout would."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from engine.errors import StoreError
from engine.stores.sql import SqlStore
from tests.conftest import libpq


@pytest.fixture
def store(postgres_fresh_db_url: str) -> Iterator[SqlStore]:
    opened = SqlStore(postgres_fresh_db_url)
    yield opened
    opened.close()


def _terminate_backends(url: str) -> int:
    """Every other server process on this database ended, as a restart would end them."""
    with psycopg.connect(libpq(url), autocommit=True) as admin:
        rows = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall()
    return len(rows)


def _idle_ping(store: SqlStore, after: float) -> None:
    ping = store.stats.ping
    assert ping is not None
    ping.after = after


def test_a_connection_back_in_use_at_once_is_not_pinged(store: SqlStore) -> None:
    _idle_ping(store, 3600.0)
    store.queued_count()
    before = store.stats.statements
    for _ in range(5):
        assert store.queued_count() == 0
    assert store.stats.statements - before == 5  # the five reads, no ping in front of any


def test_an_idle_connection_whose_server_process_ended_is_replaced_unnoticed(
        store: SqlStore, postgres_fresh_db_url: str) -> None:
    store.queued_count()
    assert _terminate_backends(postgres_fresh_db_url) >= 1
    _idle_ping(store, 0.0)  # every connection counts as idle: pinged before its next use
    before = store.stats.statements
    assert store.queued_count() == 0  # the dead connection failed its ping and was replaced
    assert store.stats.statements - before == 2  # the ping, then the read on a new connection


def test_a_busy_connection_that_broke_fails_one_call_and_the_next_one_works(
        store: SqlStore, postgres_fresh_db_url: str) -> None:
    _idle_ping(store, 3600.0)
    store.queued_count()
    assert _terminate_backends(postgres_fresh_db_url) >= 1
    with pytest.raises(StoreError):
        store.queued_count()
    assert store.queued_count() == 0  # the pool replaced every connection older than the failure


def test_a_read_leaves_no_transaction_open_on_the_server(store: SqlStore) -> None:
    with store.database.autocommit() as conn:
        conn.exec_driver_sql("SELECT count(*) FROM inbox").scalar_one()
        first, now = conn.exec_driver_sql("SELECT xact_start, query_start FROM pg_stat_activity "
                                          "WHERE pid = pg_backend_pid()").one()
    assert first == now  # each read its own transaction: no BEGIN before it, no ROLLBACK after


def test_no_statement_of_the_engine_is_jit_compiled_though_the_database_would_compile_all(
        postgres_fresh_db_url: str) -> None:
    """JIT pays for long analytic queries; the engine's are short, and a cost estimated from stale
    statistics had a 500-person profile read compiled for 200 ms to run for 4. The engine's
    connections turn it off, whatever the server's or the database's default."""
    with psycopg.connect(libpq(postgres_fresh_db_url), autocommit=True) as admin:
        name = admin.execute("SELECT current_database()").fetchone()
        assert name is not None
        admin.execute(f'ALTER DATABASE "{name[0]}" SET jit = on')
        admin.execute(f'ALTER DATABASE "{name[0]}" SET jit_above_cost = 0')
    with psycopg.connect(libpq(postgres_fresh_db_url), autocommit=True) as other:  # a session as the database says
        compiled = other.execute("EXPLAIN (ANALYZE) SELECT count(*) FROM pg_class").fetchall()
    opened = SqlStore(postgres_fresh_db_url)
    try:
        with opened.engine.connect() as conn:
            plan = [row[0] for row in conn.exec_driver_sql("EXPLAIN (ANALYZE) SELECT count(*) FROM profiles")]
    finally:
        opened.close()
    if not any("JIT:" in row[0] for row in compiled):
        pytest.skip("this PostgreSQL was built without JIT: nothing to turn off")
    assert not any("JIT:" in line for line in plan), plan
