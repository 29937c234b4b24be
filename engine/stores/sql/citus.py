"""A PostgreSQL database with the `citus` extension: the engine's tables spread over its nodes.

Opening such a database (under the schema lock every open takes, engine/stores/sql/migrate.py)
distributes each per-user table by `user_id`, all co-located with `profiles`, so one user's rows
of every table live in one shard group on one node, and makes the small tables every worker reads
reference tables (a copy on every node). The inbox, the event ids, the provider ids and the
journeys' counters stay local tables on the coordinator (docs/scaling.md says why). The
partitions the workers own become the shards (`Partitioning(shards=True)`): a batch of one
partition's users is then a query routed to one shard. Done once; a database already distributed
is left as it is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from engine.state import Partitioning
from engine.stores.sql.driver import placeholder

SHARD_HASH = "citus-hashtext"  # meta.partition_hash on a distributed database (engine/shard_hash.py)
ANCHOR = "profiles"  # the per-user tables are co-located with it
REFERENCE = ("meta", "journey_versions", "journey_states", "partition_leases", "workers", "suppressed_numbers",
             "suppressions", "runs")
LOCAL = ("inbox", "event_ids", "provider_ids", "journey_counters")  # left on the coordinator (docs/scaling.md)


# A shard's due rows, read on the node that holds it: Citus sends the call of a distributed
# function to the node of its first argument's shard (when called outside a transaction block), and
# there the function reads that shard's own table. Elsewhere (a call Citus did not send on) it reads
# the distributed table, the shard's rows only: slower, never wrong. A JSON array of [user, id].
DUE = {"journey_due_timers": ("timers", "timer_id", "due <= $1", "due"),
       "journey_due_messages": ("messages", "message_id", "dispatch = ''pending'' AND next_attempt_at <= $1",
                                "next_attempt_at")}
_DUE_BODY = """
DECLARE
  shard bigint := get_shard_id_for_distribution_column('{table}', key);
  source text := shard_name('{table}'::regclass, shard);
  found jsonb;
BEGIN
  IF to_regclass(source) IS NULL THEN
    source := '{table} WHERE get_shard_id_for_distribution_column(''{table}'', user_id) = ' || shard || ' AND';
  ELSE
    source := source || ' WHERE';
  END IF;
  EXECUTE 'SELECT coalesce(jsonb_agg(jsonb_build_array(user_id, {key})), ''[]'') FROM (SELECT user_id, {key} FROM '
          || source || ' {condition} ORDER BY {order} LIMIT $2) due' INTO found USING due_by, lim;
  RETURN found;
END
"""


def custom_plans(engine: Engine) -> None:
    """Every statement planned for its parameters' values. Citus picks a statement's shards when it
    plans it; psycopg prepares a statement a connection has run five times, and PostgreSQL may
    then plan it once for any values (a generic plan), which Citus sends to every shard: the
    dispatcher's writes became multi-shard after a few batches. The connections already open are
    closed, so that every one has the setting."""
    def _set(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_connection.commit()

    event.listen(engine, "connect", _set)
    engine.dispose()


def has_citus(conn: Connection) -> bool:
    return conn.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'citus'").first() is not None


def distribute(conn: Connection, per_user: list[str]) -> None:
    """Every per-user table distributed by `user_id` beside `profiles`, the shared ones reference
    tables; those already distributed are left alone. Sequential mode: the tables were made or
    read earlier in this transaction, and Citus may only then create their shards over one connection
    per node."""
    done = {str(r[0]) for r in conn.exec_driver_sql("SELECT logicalrelid::regclass::text FROM pg_dist_partition")}
    if ANCHOR in done and done.issuperset(per_user) and done.issuperset(REFERENCE):
        _due_functions(conn)
        return
    conn.exec_driver_sql("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
    if ANCHOR not in done:
        _shard_partitions(conn)
        conn.exec_driver_sql(f"SELECT create_distributed_table('{ANCHOR}', 'user_id')")
    for table in per_user:
        if table not in done:
            conn.exec_driver_sql(f"SELECT create_distributed_table('{table}', 'user_id', colocate_with => '{ANCHOR}')")
    for table in REFERENCE:
        if table not in done:
            conn.exec_driver_sql(f"SELECT create_reference_table('{table}')")
    _due_functions(conn)


def _due_functions(conn: Connection) -> None:
    """The functions of `DUE`, made (or made again, where their body changed) and distributed by
    their first argument beside the users' tables. No `%` in their text: psycopg reads it as a
    parameter."""
    made = {str(name): str(body) for name, body in conn.exec_driver_sql(
        "SELECT proname, prosrc FROM pg_proc WHERE proname = ANY(%s)", (list(DUE),))}
    for name, (table, key, condition, order) in DUE.items():
        body = _DUE_BODY.format(table=table, key=key, condition=condition, order=order)
        if made.get(name) != body:
            conn.exec_driver_sql(f"CREATE OR REPLACE FUNCTION {name}(key text, due_by timestamptz, lim int) "
                                 f"RETURNS jsonb LANGUAGE plpgsql AS $body${body}$body$")
        if name not in made:
            conn.exec_driver_sql(f"SELECT create_distributed_function('{name}(text, timestamptz, int)', '$1', "
                                 f"colocate_with := '{ANCHOR}')")


def _shard_partitions(conn: Connection) -> None:
    """Before the users are distributed: the partitions become the shards Citus will make
    (`citus.shard_count` of them), and the partitions already written into the inbox and the
    timers are worked out again."""
    count = int(conn.exec_driver_sql("SHOW citus.shard_count").scalar_one())
    conn.exec_driver_sql("DELETE FROM meta WHERE key IN ('partitions', 'partition_hash')")
    conn.exec_driver_sql("INSERT INTO meta (key, value) VALUES ('partitions', %s), ('partition_hash', %s)",
                         (str(count), SHARD_HASH))
    conn.exec_driver_sql("DELETE FROM partition_leases WHERE part >= %s", (count,))
    shards = Partitioning(count, shards=True)
    mark = placeholder("postgresql")
    for table, key in (("timers", "timer_id"), ("inbox", "seq")):
        rows = conn.exec_driver_sql(f"SELECT {key}, user_id FROM {table}").all()
        if rows:
            conn.exec_driver_sql(f"UPDATE {table} SET part = {mark} WHERE {key} = {mark}",
                                 [(shards.of(str(user)), k) for k, user in rows])


def partitioning(conn: Connection, count: int) -> Partitioning:
    """How this database's users fall into its `count` partitions, as recorded in `meta`."""
    row = conn.exec_driver_sql("SELECT value FROM meta WHERE key = 'partition_hash'").first()
    return Partitioning(count, shards=row is not None and row[0] == SHARD_HASH)



