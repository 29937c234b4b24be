"""Statements and rows as the database sees them, counted where SQLAlchemy hands them to the driver.

`journey bench` and /metrics report them per event: a figure that, unlike a rate, does not
move with the load of the machine. A statement is one execution on the server: an
`executemany` of 32 rows is 32 (what PostgreSQL's pg_stat_statements counts as calls), one
INSERT over arrays of 1,000 rows is one. On PostgreSQL the pool's ping of a connection that sat
idle (engine/stores/sql/ping.py) is a statement too. Rows are the rows written: what the INSERT,
UPDATE and DELETE statements report they changed (one with RETURNING, on SQLite, reports them
once its rows are read: its cursor is kept and its count taken when the totals are); of a
statement whose CTEs write (a claim, a dispatch window's writes), the rows it returns, one for
each message it wrote (not the counters it adds to).
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from engine.stores.sql.ping import IdlePing

_WRITES = ("INSERT", "UPDATE", "DELETE")
_KEPT = 1000  # cursors of writes with RETURNING waiting to be counted, at most


class SqlStats:
    """Running totals of one engine's statements and rows written."""

    def __init__(self, ping: IdlePing | None = None) -> None:
        self.ping = ping
        self._statements = 0
        self._rows = 0
        self._returning: list[Any] = []  # cursors of writes with RETURNING, counted once read
        self._adding = threading.Lock()

    @property
    def statements(self) -> int:
        return self._statements + (self.ping.pings if self.ping is not None else 0)

    @property
    def rows(self) -> int:
        with self._adding:
            self._count_returning(len(self._returning))
            return self._rows

    @classmethod
    def watch(cls, engine: Engine, ping: IdlePing | None) -> SqlStats:
        """Count every statement `engine` runs from now on, with `ping`'s pings."""
        stats = cls(ping)
        event.listen(engine, "after_cursor_execute", stats._executed)
        return stats

    def _executed(self, _conn: Any, cursor: Any, statement: str, parameters: Any, _context: Any,
                  executemany: bool) -> None:
        head = statement.lstrip()[:6].upper()
        write = head in _WRITES or (head.startswith("WITH") and any(f"{w} " in statement for w in _WRITES))
        with self._adding:
            self._statements += len(parameters) if executemany else 1
            if write and cursor.rowcount <= 0 and " RETURNING " in statement:  # SQLite's: not counted yet
                self._returning.append(cursor)
                if len(self._returning) > _KEPT:  # nobody reads the totals: count the older half now
                    self._count_returning(_KEPT // 2)
            elif write:
                self._rows += max(cursor.rowcount, 0)

    def _count_returning(self, count: int) -> None:
        done, self._returning = self._returning[:count], self._returning[count:]
        self._rows += sum(max(c.rowcount, 0) for c in done)
