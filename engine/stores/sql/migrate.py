"""Creating and migrating the schema when a process opens the database (`SqlStore`).

Every process that opens a database comes here: each worker as it starts, each CLI command.
Missing tables are created and an older schema migrated in one transaction; on PostgreSQL
that transaction first takes the schema's advisory lock, so processes starting together do
it one at a time and the next finds the tables committed (two CREATE TABLEs of one name at
once: one of them fails on PostgreSQL's catalog, `pg_type_typname_nsp_index`).
"""

from __future__ import annotations

from sqlalchemy import Table, insert, inspect, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as SaEngine
from sqlmodel import SQLModel

from engine.errors import StoreError
from engine.state import Partitioning
from engine.stores.sql.citus import distribute, has_citus, partitioning
from engine.stores.sql.driver import json_text
from engine.stores.sql.keys import number_rows, widen_keys
from engine.stores.sql.partitions import add_partitions, partition_count, prepare
from engine.stores.sql.recent import RecentRow
from engine.stores.sql.schema import META, RETIRED_INDEXES, SCHEMA_VERSION

SCHEMA_LOCK = (0x6A6F7572, 0x736368)  # "jour", "sch": a two-key advisory lock, apart from the users' one-key ones


def create_schema(engine: SaEngine, url: str, dialect: str) -> Partitioning:
    """Make the schema current (on Citus, distributed); returns how the database's users fall
    into partitions."""
    with engine.begin() as conn:
        if dialect == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK[0]}, {SCHEMA_LOCK[1]})")
        SQLModel.metadata.create_all(conn)
        if dialect == "sqlite":
            number_rows(conn)
        row = conn.execute(select(META.c.value).where(META.c.key == "schema_version")).first()
        if row is None:
            conn.execute(insert(META).values(key="schema_version", value=str(SCHEMA_VERSION)))
        elif int(row[0]) > SCHEMA_VERSION:
            raise StoreError(f"{url}: schema version {row[0]} is newer than this journey-engine "
                             f"({SCHEMA_VERSION}); upgrade journey-engine")
        elif int(row[0]) < SCHEMA_VERSION:
            _migrate(conn, int(row[0]), dialect)
            conn.execute(update(META).where(META.c.key == "schema_version").values(value=str(SCHEMA_VERSION)))
        if dialect == "postgresql" and has_citus(conn):
            distribute(conn, [t.name for t in per_user_tables()])
        count = partition_count(conn)
        if dialect == "postgresql":
            prepare(conn, count)
        return partitioning(conn, count)


def _migrate(conn: Connection, version: int, dialect: str) -> None:
    """Bring a database made by an older version up to date, in place: add the phone column
    (filled from the profile documents), the partitions, the messages' claim column, the recent
    marks (13), the profiles' engagement and the messages' choice (18: empty, nothing counted yet,
    nothing chosen by auto), the messages' locale and the versions' templates (15 and 16, added by
    19 to a database version 18 made without them), the messages' tally and engagement (20), every
    per-user table's key starting with `user_id` (21), drop retired indexes and create whatever the
    current tables declare. Older engines refuse the database afterwards, because its version is
    bumped."""
    if version < 4:
        conn.exec_driver_sql("ALTER TABLE profiles ADD COLUMN phone VARCHAR")
        conn.exec_driver_sql("UPDATE profiles SET phone = " + json_text(dialect, "doc", "'phone'"))
    if version < 11:
        add_partitions(conn)
    if version < 12 and "claim" not in {c["name"] for c in inspect(conn).get_columns("messages")}:
        conn.exec_driver_sql("ALTER TABLE messages ADD COLUMN claim VARCHAR")
    if version < 13:
        RecentRow.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]
    if version < 18:  # whether or not the changes numbered before it have landed: columns are added once
        _add_column(conn, "profiles", "engagement", "JSON")
        _add_column(conn, "messages", "choice", "JSON")
    if version < 19:  # 15 and 16 landed after 18: a database 18 made lacks them, as one from before 15 does
        _add_column(conn, "messages", "locale", "VARCHAR")
        _add_column(conn, "journey_versions", "templates", "JSON")
    if version < 20:  # journey_counters is a new table, made by `create_all`
        _add_column(conn, "messages", "tally", "VARCHAR")
        _add_column(conn, "messages", "engaged", "VARCHAR")
    if version < 21:
        widen_keys(conn, per_user_tables(), dialect)
        if dialect == "sqlite":
            number_rows(conn)  # on the tables made again
    for name in RETIRED_INDEXES:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
    for table in SQLModel.metadata.sorted_tables:
        for index in table.indexes:
            index.create(conn, checkfirst=True)


def _add_column(conn: Connection, table: str, column: str, kind: str) -> None:
    """A nullable column, as the tables declare it (SQLAlchemy's JSON is JSON on both), unless the
    table has it already (added by an earlier step, or made by `create_all`)."""
    if column not in {c["name"] for c in inspect(conn).get_columns(table)}:
        conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def per_user_tables() -> list[Table]:
    """The tables of users' rows (Citus distributes them by `user_id`), the inbox and the provider
    ids apart: each found by its own key (docs/scaling.md). Profiles were keyed by `user_id` from
    the start."""
    return [t for t in SQLModel.metadata.sorted_tables
            if "user_id" in t.c and t.name not in ("inbox", "profiles", "provider_ids")]
