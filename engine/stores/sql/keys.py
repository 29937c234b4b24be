"""Schema 21: every per-user table's primary key starts with `user_id`.

Citus distributes a table by one column and requires every unique key to contain it; the
engine's per-user tables are distributed by `user_id`, so their keys are (user_id, their id).
PostgreSQL changes a key in place; SQLite cannot, so there each table is made again and its rows
copied (`widen_keys`). The tables numbered by the database (consents, skips, erasures, recent)
keep their numbers: an identity on PostgreSQL (the old serial's sequence on a migrated table);
on SQLite, whose autoincrement needs a one-column key, a trigger gives a new row its rowid
(copied rows keep theirs, so numbers only grow, as the consent ledger's readers expect).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateColumn

NUMBERED = ("consents", "skips", "erasures", "recent")  # keyed (user_id, id), `id` given by the database


@compiles(CreateColumn, "sqlite")
def _numbered_column(element: CreateColumn, compiler: Any, **kw: Any) -> str:
    """On SQLite a numbered `id` is left NULL by the INSERT and set by the trigger just after."""
    text = str(compiler.visit_create_column(element, **kw) or "")
    return text.replace(" NOT NULL", "") if element.element.identity is not None else text


def number_rows(conn: Connection) -> None:
    """SQLite: a new row of a numbered table gets its rowid as its `id` (made once, with the table)."""
    for table in NUMBERED:
        conn.exec_driver_sql(f"CREATE TRIGGER IF NOT EXISTS {table}_number AFTER INSERT ON {table} "
                             f"WHEN NEW.id IS NULL BEGIN UPDATE {table} SET id = NEW.rowid "
                             "WHERE rowid = NEW.rowid; END")


def widen_keys(conn: Connection, tables: list[Table], dialect: str) -> None:
    """Migration to schema 21: each table's key becomes its declared one, (user_id, ...)."""
    for table in tables:
        key = [c.name for c in table.primary_key.columns]
        if inspect(conn).get_pk_constraint(table.name)["constrained_columns"] == key:
            continue  # made by `create_all` in this release
        if dialect == "postgresql":
            name = inspect(conn).get_pk_constraint(table.name)["name"]
            conn.exec_driver_sql(f'ALTER TABLE {table.name} DROP CONSTRAINT "{name}", '
                                 f"ADD PRIMARY KEY ({', '.join(key)})")
            if table.name in NUMBERED:  # numbers go on after the highest row, however it was written
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), max(id)) "
                                     f"FROM {table.name} HAVING max(id) IS NOT NULL")
        else:
            _remake(conn, table)


def _remake(conn: Connection, table: Table) -> None:
    """SQLite: the table made again with its new key, its rows copied (numbered ones keep their
    number as their rowid), the old one dropped with its indexes."""
    old = f"{table.name}_v20"
    columns = [c["name"] for c in inspect(conn).get_columns(table.name)]
    for index in inspect(conn).get_indexes(table.name):
        conn.exec_driver_sql(f'DROP INDEX IF EXISTS "{index["name"]}"')
    conn.exec_driver_sql(f"ALTER TABLE {table.name} RENAME TO {old}")
    table.create(conn)
    listed = ", ".join(f'"{c}"' for c in columns)
    if table.name in NUMBERED:
        conn.exec_driver_sql(f"INSERT INTO {table.name} (rowid, {listed}) SELECT id, {listed} FROM {old}")
    else:
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({listed}) SELECT {listed} FROM {old}")
    conn.exec_driver_sql(f"DROP TABLE {old}")
