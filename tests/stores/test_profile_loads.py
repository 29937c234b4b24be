"""Reading users' profiles with their consent ledgers, as the engine's batches and the
dispatcher's rechecks do: the same profiles on every backend, in one statement on PostgreSQL
(the ledger and the number's suppression with each profile), two on Citus and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event

from channels import ConsentRecord, Profile
from engine.stores.sql import SqlStore
from engine.stores.sql.driver import Driver
from engine.stores.sql.loads import profiles_of

T0 = datetime(2026, 1, 5, 10, 30, 0, 123456, tzinfo=UTC)
LEDGER = (ConsentRecord("sms", "marketing", True, "web", T0), ConsentRecord("sms", "marketing", False, "STOP", T0),
          ConsentRecord("email", "transactional", True, None, datetime(2026, 1, 6, tzinfo=UTC)))
STATEMENTS = {"sqlite": 2, "postgresql": 1, "citus": 2}


def test_profiles_come_with_their_ledgers_and_numbers_suppressions(sql_store: SqlStore) -> None:
    with sql_store.transaction() as tx:
        tx.put_profile(Profile("ada", phone="+14155550100", consents=LEDGER))
        tx.put_profile(Profile("bob", phone="+14155550111"))
        tx.record_suppression("+14155550100", "STOP", T0, "sms")
    statements: list[str] = []
    event.listen(sql_store.engine, "before_cursor_execute", lambda _c, _k, sql, *_: statements.append(sql))
    numbers: dict[str, datetime | None] = {}
    with sql_store.engine.connect() as conn:
        found = profiles_of(Driver(conn, sql_store.dialect), ["ada", "bob"], numbers,
                            routed=sql_store.partitioning.shards)
    assert sorted(found) == ["ada", "bob"]
    assert found["ada"].consents == LEDGER and found["bob"].consents == ()
    assert numbers == {"+14155550100": T0, "+14155550111": None}
    backend = "citus" if sql_store.partitioning.shards else sql_store.dialect
    assert len(statements) == STATEMENTS[backend], statements


def test_a_ledger_without_a_profile_row_is_read_all_the_same_and_nobody_is_made_up(sql_store: SqlStore) -> None:
    with sql_store.transaction() as tx:
        tx.put_profile(Profile("ada", consents=LEDGER[:1]))
    with sql_store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM profiles WHERE user_id = 'ada'")
    with sql_store.engine.connect() as conn:
        found = profiles_of(Driver(conn, sql_store.dialect), ["ada", "cy"], routed=sql_store.partitioning.shards)
    assert found == {"ada": Profile("ada", consents=LEDGER[:1])}
