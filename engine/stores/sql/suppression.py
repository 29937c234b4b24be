"""The phone suppression list in SQL: a ledger of STOP/START rows per number (`suppressions`,
never rewritten: who, when and how stays provable) and the numbers suppressed now
(`suppressed_numbers`, one row each, for the lookups of the hot path).

`TxSuppressions` is the list as one transaction sees it: the numbers of a batch's profiles are
looked up in one query (or found in the SQLite cache), writes are buffered until the flush.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from engine.stores.sql.cache import StateCache
from engine.stores.sql.driver import Driver
from engine.stores.sql.schema import chunks

_CURRENT = "SELECT number, since FROM suppressed_numbers WHERE number IN ({in})"


def read_suppressions(db: Driver, numbers: Collection[str]) -> dict[str, datetime]:
    """The numbers among `numbers` that are suppressed now, with the time of their STOP."""
    found: dict[str, datetime] = {}
    for chunk in chunks(sorted(numbers)):
        for number, since in db.where_in(_CURRENT, chunk):
            found[str(number)] = db.read_time(since)
    return found


def suppression_rows(db: Driver, number: str) -> list[dict[str, Any]]:
    """The ledger rows of one number, oldest first."""
    rows = db.rows(f"SELECT number, keyword, at, source FROM suppressions WHERE number = {db.mark} ORDER BY id",
                   [number])
    return [{"number": n, "keyword": k, "at": db.read_time(a), "source": s} for n, k, a, s in rows]


class TxSuppressions:
    def __init__(self, db: Driver, cache: StateCache | None) -> None:
        self.db = db
        self.cache = cache
        self.known: dict[str, datetime | None] = {}
        self.ledger: list[tuple[Any, ...]] = []
        self.changed: dict[str, datetime | None] = {}

    def load(self, numbers: Collection[str]) -> None:
        """Look up every number not known yet, in one query per chunk."""
        missing = [n for n in numbers if n not in self.known and not self._cached(n)]
        if not missing:
            return
        found = read_suppressions(self.db, missing)
        for number in missing:
            self.known[number] = found.get(number)
        if self.cache is not None:
            self.cache.remember_numbers({n: self.known[n] for n in missing})

    def _cached(self, number: str) -> bool:
        if self.cache is None or number not in self.cache.suppressed:
            return False
        self.known[number] = self.cache.suppressed[number]
        return True

    def since(self, number: str) -> datetime | None:
        """Asked for every event (the numbers were prefetched with the batch): a dict lookup."""
        if number not in self.known:
            self.load([number])
        return self.known[number]

    def record(self, number: str, keyword: str, at: datetime, source: str) -> None:
        """STOP suppresses the number (from its first STOP on); START lifts it."""
        self.ledger.append((number, keyword, self.db.time(at), source))
        since = (self.since(number) or at) if keyword == "STOP" else None
        self.known[number] = self.changed[number] = since
        if self.cache is not None:
            self.cache.remember_numbers({number: since})

    def flush(self) -> None:
        db = self.db
        db.write(db.insert_sql("suppressions", ("number", "keyword", "at", "source")), self.ledger)
        stopped = [(n, db.time(s)) for n, s in self.changed.items() if s is not None]
        db.write(db.insert_sql("suppressed_numbers", ("number", "since"), ("number",), ("since",)), stopped)
        lifted: Sequence[str] = [n for n, s in self.changed.items() if s is None]
        for chunk in chunks(lifted):
            db.run_in("DELETE FROM suppressed_numbers WHERE number IN ({in})", chunk)
