"""journey-engine on a Citus cluster (a coordinator and two workers on loopback): opening a database
distributes every per-user table by `user_id`, co-located, and makes the shared tables reference
tables; the partitions the workers own are the shards, worked out in Python as Citus places rows."""

from __future__ import annotations

import psycopg
import pytest

from engine.shard_hash import hashtext
from engine.stores.sql import SqlStore
from engine.stores.sql.citus import LOCAL, REFERENCE
from engine.stores.sql.migrate import per_user_tables
from tests.conftest import libpq

pytestmark = pytest.mark.citus
USERS = [f"user-{n}" for n in range(300)] + ["", "é", "a" * 11, "b" * 12, "c" * 13, "+14155550100", "🙂" * 5]


def test_opening_distributes_the_users_tables_by_user_and_makes_the_shared_ones_reference_tables(
        citus_fresh_db_url: str) -> None:
    SqlStore(citus_fresh_db_url).close()
    SqlStore(citus_fresh_db_url).close()  # a second open finds it done
    with psycopg.connect(libpq(citus_fresh_db_url)) as conn:
        rows = conn.execute("SELECT logicalrelid::regclass::text, partmethod, column_to_column_name(logicalrelid, "
                            "partkey), colocationid FROM pg_dist_partition").fetchall()
        nodes = conn.execute("SELECT count(DISTINCT nodename || nodeport) FROM pg_dist_shard_placement p JOIN "
                             "pg_dist_shard s USING (shardid) WHERE s.logicalrelid = 'messages'::regclass").fetchone()
        local = conn.execute("SELECT relname FROM pg_class WHERE relname = ANY(%s) AND relkind = 'r' "
                             "AND oid NOT IN (SELECT logicalrelid FROM pg_dist_partition)", (list(LOCAL),)).fetchall()
    found = {table: (method, column, group) for table, method, column, group in rows}
    distributed = {"profiles", *(t.name for t in per_user_tables())}
    assert distributed >= {"profiles", "consents", "instances", "timers", "messages", "skips", "links", "recent"}
    for table in distributed:
        assert found[table][:2] == ("h", "user_id"), table
    assert len({found[t][2] for t in distributed}) == 1  # one co-location group: a user's rows on one node
    for table in REFERENCE:
        assert found[table][0] == "n", table
    assert nodes == (2,)  # shards on both workers
    assert sorted(r[0] for r in local) == ["event_ids", "inbox", "journey_counters", "provider_ids"]  # coordinator's


def test_the_partitions_are_the_shards_citus_puts_each_user_in(citus_fresh_db_url: str) -> None:
    store = SqlStore(citus_fresh_db_url)
    try:
        partitioning = store.partitioning
        with psycopg.connect(libpq(citus_fresh_db_url)) as conn:
            shards = [r[0] for r in conn.execute("SELECT shardid FROM pg_dist_shard WHERE logicalrelid = "
                                                 "'profiles'::regclass ORDER BY shardminvalue::int")]
            for user in USERS:
                shard, hashed = conn.execute("SELECT get_shard_id_for_distribution_column('profiles', %s::text), "
                                             "hashtext(%s::text)", (user, user)).fetchone()  # type: ignore[misc]
                assert hashtext(user) == hashed, user
                assert shards.index(shard) == partitioning.of(user), user
    finally:
        store.close()
    assert partitioning.shards and partitioning.count == len(shards) == 32
