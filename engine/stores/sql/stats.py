"""Statements and rows as the database sees them, counted where SQLAlchemy hands them to the driver.

`journey bench` and /metrics report them per event: a figure that, unlike a rate, does not
move with the load of the machine. A statement is one execution on the server: an
`executemany` of 32 rows is 32 (what PostgreSQL's pg_stat_statements counts as calls), one
INSERT over arrays of 1,000 rows is one. On PostgreSQL the pool's ping before each checkout
is a statement too. Rows are the rows written: what the INSERT, UPDATE and DELETE statements
report they changed.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

_WRITES = ("INSERT", "UPDATE", "DELETE")


class SqlStats:
    """Running totals of one engine's statements and rows written."""

    def __init__(self) -> None:
        self.statements = 0
        self.rows = 0
        self._adding = threading.Lock()

    @classmethod
    def watch(cls, engine: Engine, pings: bool) -> SqlStats:
        """Count every statement `engine` runs from now on; `pings`: the pool pings on checkout."""
        stats = cls()
        event.listen(engine, "after_cursor_execute", stats._executed)
        if pings:
            event.listen(engine, "checkout", stats._pinged)
        return stats

    def _executed(self, _conn: Any, cursor: Any, statement: str, parameters: Any, _context: Any,
                  executemany: bool) -> None:
        written = cursor.rowcount if statement.lstrip()[:6].upper() in _WRITES else 0
        with self._adding:
            self.statements += len(parameters) if executemany else 1
            self.rows += max(written, 0)

    def _pinged(self, *_: Any) -> None:
        with self._adding:
            self.statements += 1
