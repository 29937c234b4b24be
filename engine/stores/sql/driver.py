"""Hot-path SQL handed straight to the DBAPI driver, and the value codec it needs.

SQLAlchemy's per-value bind and result processing (datetime to string, JSON encode and
decode, per-row parameter dicts) cost more than SQLite's own work for the narrow rows the
engine writes on every event. The statements here are plain INSERT / SELECT text that both
SQLite and PostgreSQL accept; values are encoded exactly as SQLAlchemy would store them,
so every other reader (the HTTP API, the dispatcher) sees the same data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from channels.json_text import dump_json
from engine.stores.sql.schema import aware


def placeholder(dialect: str) -> str:
    """The driver's parameter mark: sqlite3 takes `?`, psycopg `%s`."""
    return "?" if dialect == "sqlite" else "%s"


def json_text(dialect: str, doc: str, key: str) -> str:
    """SQL for the text at `key` (an SQL string expression) of the JSON column `doc`."""
    return f"json_extract({doc}, '$.' || {key})" if dialect == "sqlite" else f"({doc} ->> {key})"


class Driver:
    """One connection's dialect: placeholders, value encoding and raw statements."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn = conn
        self.sqlite = dialect == "sqlite"
        self.mark = placeholder(dialect)
        self._last_time: tuple[datetime, Any] = (datetime.min.replace(tzinfo=UTC), None)

    # --- values ---------------------------------------------------------------------------

    def time(self, at: datetime) -> Any:
        """SQLite stores naive UTC text with microseconds (SQLAlchemy's format); PostgreSQL a datetime.
        Most rows of a batch carry the same instant: the last one encoded is kept."""
        if at == self._last_time[0]:  # naive never equals aware, so a hit is the same instant
            return self._last_time[1]
        utc = at.astimezone(UTC)
        value = utc.replace(tzinfo=None).isoformat(" ", "microseconds") if self.sqlite else utc
        self._last_time = (at, value)
        return value

    def maybe_time(self, at: datetime | None) -> Any:
        return None if at is None else self.time(at)

    @staticmethod
    def json(value: Any) -> str:
        """Written with orjson; read with the standard library, which keeps big integers exact."""
        return dump_json(value)

    @staticmethod
    def read_time(value: Any) -> datetime:
        if isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        assert isinstance(value, datetime)
        return aware(value)

    @staticmethod
    def read_json(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str | bytes) else value

    # --- statements -----------------------------------------------------------------------

    def marks(self, count: int) -> str:
        return ", ".join([self.mark] * count)

    def insert_sql(self, table: str, columns: Sequence[str], conflict: Sequence[str] = (),
                   update: Sequence[str] = ()) -> str:
        """INSERT, or upsert on `conflict` (ON CONFLICT ... DO UPDATE is the same in both dialects)."""
        sql = f"INSERT INTO {table} ({', '.join(_q(c) for c in columns)}) VALUES ({self.marks(len(columns))})"
        if conflict:
            target = ", ".join(_q(c) for c in conflict)
            action = "UPDATE SET " + ", ".join(f"{_q(c)} = excluded.{_q(c)}" for c in update) if update else "NOTHING"
            sql += f" ON CONFLICT ({target}) DO {action}"
        return sql

    def of_users(self, users: Sequence[str], routed: bool = True) -> tuple[str, list[Any]]:
        """`{t}user_id IN (...) AND ` (as `update` takes a condition) for `users`, and its
        parameters; nothing for none. Naming the users routes a statement to their shard on Citus,
        and finds its rows by the primary key (user_id first) elsewhere. `routed` False (off
        Citus): nothing, for a statement that finds its rows by their whole key (`keyed`).
        PostgreSQL: one array, so the statement's text is the same whatever the count."""
        if not users or not routed:
            return "", []
        if self.sqlite:
            return f"{{t}}user_id IN ({self.marks(len(users))}) AND ", list(users)
        return f"{{t}}user_id = ANY({self.mark}) AND ", [list(users)]

    def write(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Many rows of one statement. On PostgreSQL a batch of rows for an INSERT goes as one
        statement over arrays (`unnest`) rather than a statement a row: a fifth of the server's
        work. The rows of an upsert must have distinct keys (the callers' rows are keyed)."""
        if not rows:
            return
        if not self.sqlite and len(rows) >= ARRAYS_FROM and sql.startswith("INSERT INTO "):
            self.run_over_arrays(self._unnest(sql), rows)
            return
        self.conn.exec_driver_sql(sql, list(rows))

    def update(self, table: str, key: str | tuple[str, ...], columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
               also: str = "", where: str = "", params: Sequence[Any] = ()) -> set[Any]:
        """`UPDATE table SET columns WHERE key = ...` for each row (the columns' values, then the
        key's: a tuple names a composite key, its values last in its order); returns the last key
        column's values of the rows changed. `also`: more assignments, without parameters; `where`:
        a further condition each row must meet, with `params`, its columns written `{t}column`
        (qualified where the statement needs it). On PostgreSQL a batch is one statement over arrays
        bound in binary, on SQLite one `UPDATE ... FROM (VALUES ...)` (below); a row updated twice
        keeps its last."""
        if not rows:
            return set()
        keys = (key,) if isinstance(key, str) else key
        if self.sqlite and (where or len(rows) >= UNNEST_FROM):
            return self._update_from_values(table, keys, columns, rows, also, where, params)
        sets = ", ".join(f"{c} = {self.mark}" for c in columns) + (f", {also}" if also else "")
        if self.sqlite or len(rows) < ARRAYS_FROM:
            sql = f"UPDATE {table} SET {sets} WHERE " + " AND ".join(f"{k} = {self.mark}" for k in keys)
            if not where:
                self.conn.exec_driver_sql(sql, list(rows))
                return {row[-1] for row in rows}
            sql += " AND " + where.replace("{t}", "")
            return {row[-1] for row in rows if self.conn.exec_driver_sql(sql, (*row, *params)).rowcount}
        rows = list({row[-1]: row for row in rows}.values())
        statement = self.update_over_arrays(table, keys, columns, also, where)
        return {r[0] for r in self.run_over_arrays(statement, rows, params)}

    def update_over_arrays(self, table: str, key: str | tuple[str, ...], columns: Sequence[str], also: str = "",
                           where: str = "") -> tuple[str, frozenset[int]]:
        """PostgreSQL: `update`'s statement over one binary array a column (then the key's), which
        returns the last key column of the rows changed, with its float columns (`run_over_arrays`
        runs it); made once a process."""
        keys = (key,) if isinstance(key, str) else key
        statement = _UPDATES.get((table, keys, tuple(columns), also, where))
        if statement is None:
            names = (*columns, *keys)
            types = self._types(table, names)
            arrays = ", ".join(f"%b::{types[c]}[]" for c in names)
            condition = " AND " + where.replace("{t}", "t.") if where else ""
            statement = _UPDATES[(table, keys, tuple(columns), also, where)] = (
                f"UPDATE {table} AS t SET " + ", ".join(f"{c} = v.{c}" for c in columns) + (f", {also}" if also else "")
                + f" FROM unnest({arrays}) AS v({', '.join(names)}) WHERE "
                + " AND ".join(f"t.{k} = v.{k}" for k in keys) + f"{condition} RETURNING t.{keys[-1]}",
                _floats(types, names))
        return statement

    def _update_from_values(self, table: str, keys: tuple[str, ...], columns: Sequence[str],
                            rows: Sequence[Sequence[Any]], also: str, where: str, params: Sequence[Any]) -> set[Any]:
        """SQLite, an update with a condition or of a batch: one `UPDATE ... FROM (VALUES ...)
        RETURNING` a chunk of rows, rather than a statement a row (each row's own count was the only
        way to learn which met the condition; a batch of engagement or statuses, a statement a
        person, was a statement and a half an event). Each row is found by its whole key: a
        composite key's columns joined one by one, never one column matched against a list of the
        other's values (SQLite's planner, without statistics, then probes every pair)."""
        rows = list({row[-1]: row for row in rows}.values())
        width = len(columns) + len(keys)
        sets = ", ".join(f"{c} = v.column{n}" for n, c in enumerate(columns, 1)) + (f", {also}" if also else "")
        match = " AND ".join(f"{table}.{k} = v.column{n}" for n, k in enumerate(keys, len(columns) + 1))
        condition = " AND " + where.replace("{t}", f"{table}.") if where else ""
        changed: set[Any] = set()
        for start in range(0, len(rows), VALUES_CHUNK):
            chunk = rows[start:start + VALUES_CHUNK]
            values = ", ".join([f"({self.marks(width)})"] * len(chunk))
            sql = (f"UPDATE {table} SET {sets} FROM (VALUES {values}) AS v WHERE {match}{condition} "
                   f"RETURNING {table}.{keys[-1]}")
            changed.update(r[0] for r in self.rows(sql, [*(value for row in chunk for value in row), *params]))
        return changed

    def keyed(self, keys: Sequence[str], rows: Sequence[Sequence[Any]]) -> tuple[str, list[Any]]:
        """A relation `k` of these rows of key values (text; `keys` names its columns) to join a
        table on its whole primary key, and its parameters: each row is then found by the key.
        SQLite: a VALUES list; PostgreSQL: one binary array a column, one statement text whatever
        the count. Naming a composite key's columns in a list each instead made both planners pair
        every value of one with every value of the other (SQLite, lacking statistics: 250,000
        lookups for 500 timers; PostgreSQL, in a bitmap scan: 435 ms for one feedback batch)."""
        if self.sqlite:
            names = ", ".join(f"column{n} AS {key}" for n, key in enumerate(keys, 1))
            values = ", ".join([f"({self.marks(len(keys))})"] * len(rows))
            return f"(SELECT {names} FROM (VALUES {values})) AS k", [value for row in rows for value in row]
        arrays = ", ".join(["%b::varchar[]"] * len(keys))
        return f"unnest({arrays}) AS k({', '.join(keys)})", [list(column) for column in zip(*rows, strict=True)]

    @staticmethod
    def on_keys(table: str, keys: Sequence[str]) -> str:
        """The join of `table`'s rows to `keyed`'s `k` by each of `keys`."""
        return " AND ".join(f"{table}.{key} = k.{key}" for key in keys)

    def rows_of(self, table: str, keys: Sequence[str], rows: Sequence[Sequence[Any]]) -> tuple[str, list[Any]]:
        """SQLite: the condition `rowid IN (...)` for the rows of `table` named by their whole key
        (`keyed`), and its parameters: a DELETE, which takes no other table to join."""
        relation, params = self.keyed(keys, rows)
        return f"rowid IN (SELECT t.rowid FROM {relation} JOIN {table} AS t ON {self.on_keys('t', keys)})", params

    def run_over_arrays(self, statement: tuple[str, frozenset[int]], rows: Sequence[Sequence[Any]],
                params: Sequence[Any] = ()) -> Sequence[Sequence[Any]]:
        """One statement over one array per column, bound in binary: psycopg then quotes and
        escapes nothing in Python (in text, every JSON document's quotes were escaped one by one,
        40% of a worker's time). A binary array holds one type: the float columns' ints become
        floats. `params` follow the arrays; the rows the statement returns, if any."""
        sql, floats = statement
        columns = [list(column) for column in zip(*rows, strict=True)]
        for n in floats:
            columns[n] = [None if v is None else float(v) for v in columns[n]]
        result = self.conn.exec_driver_sql(sql, (*columns, *params))
        return result.all() if result.returns_rows else ()

    def _unnest(self, sql: str) -> tuple[str, frozenset[int]]:
        """`INSERT INTO t (a, b) VALUES (%s, %s) ...` -> `INSERT INTO t (a, b) SELECT * FROM
        unnest(%b::<type of a>[], %b::<type of b>[]) ...`, built once a statement."""
        found = _UNNESTS.get(sql)
        if found is None:
            head, _, rest = sql.partition(" VALUES (")
            table = head.removeprefix("INSERT INTO ").split(" ", 1)[0]
            columns = [c.strip().strip('"') for c in head.partition("(")[2].rstrip(")").split(",")]
            types = self._types(table, columns)
            arrays = ", ".join(f"%b::{types[c]}[]" for c in columns)
            tail = rest.partition(")")[2]
            found = _UNNESTS[sql] = (f"{head} SELECT * FROM unnest({arrays}){tail}", _floats(types, columns))
        return found

    def column_types(self, table: str, columns: Sequence[str]) -> dict[str, str]:
        """PostgreSQL: each of these columns' type, as an array of it is cast (read once a process)."""
        types = self._types(table, columns)
        return {c: types[c] for c in columns}

    def _types(self, table: str, columns: Sequence[str]) -> dict[str, str]:
        known = _COLUMN_TYPES.get(table)
        if known is None or not known.keys() >= set(columns):  # not read yet, or a column added since
            found = self.conn.exec_driver_sql(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %s::regclass "
                "AND attnum > 0 AND NOT attisdropped", (table,)).all()
            known = _COLUMN_TYPES[table] = {str(name): str(kind) for name, kind in found}
        return known

    def rows(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Sequence[Any]]:
        return self.conn.exec_driver_sql(sql, tuple(params)).all()

    def where_in(self, sql: str, values: Sequence[Any], extra: Sequence[Any] = (),
                 first: Sequence[Any] = ()) -> Sequence[Sequence[Any]]:
        """`sql` with `IN ({in})` matching `values`, after `first` and followed by `extra`
        parameters. SQLite: a placeholder a value; PostgreSQL: `= ANY` of one binary array, one
        statement text whatever the count (psycopg parses a text once, not a thousand placeholders
        each time)."""
        if self.sqlite:
            return self.rows(sql.replace("{in}", self.marks(len(values))), [*first, *values, *extra])
        return self.rows(sql.replace("IN ({in})", "= ANY(%b)"), [*first, list(values), *extra])

    def run_in(self, sql: str, values: Sequence[Any], first: Sequence[Any] = ()) -> None:
        """A statement that returns no rows, with `{in}` as in `where_in`; `first` fills the
        placeholders before the list."""
        if self.sqlite or "{in}" not in sql:
            self.conn.exec_driver_sql(sql.replace("{in}", self.marks(len(values))), (*first, *values))
        else:
            self.conn.exec_driver_sql(sql.replace("IN ({in})", "= ANY(%b)"), (*first, list(values)))


UNNEST_FROM = 8  # rows, SQLite: fewer go as a statement each
ARRAYS_FROM = 2  # rows, PostgreSQL: two rows over arrays are one statement rather than two (a dispatch
# group's counters, a few messages' statuses), and the statement's text is the same whatever the count
VALUES_CHUNK = 200  # rows of one SQLite `UPDATE ... FROM (VALUES ...)`: well within its 32,766 parameters
_COLUMN_TYPES: dict[str, dict[str, str]] = {}  # table -> column -> PostgreSQL type, read once a process
_UNNESTS: dict[str, tuple[str, frozenset[int]]] = {}  # INSERT ... VALUES -> over arrays, and its float columns
_UpdateKey = tuple[str, tuple[str, ...], tuple[str, ...], str, str]  # table, key, columns, also, where
_UPDATES: dict[_UpdateKey, tuple[str, frozenset[int]]] = {}  # the same for `update`
_FLOAT_TYPES = ("double precision", "real")


def _floats(types: dict[str, str], columns: Sequence[str]) -> frozenset[int]:
    return frozenset(n for n, c in enumerate(columns) if types[c] in _FLOAT_TYPES)


def _q(name: str) -> str:
    return f'"{name}"'
