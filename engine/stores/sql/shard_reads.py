"""Citus: which of one shard's timers or messages are due, read on the node that holds the shard.

A claim on Citus takes one shard's rows, by a statement routed there by their users; which users
those are is the one thing the coordinator cannot ask a shard without asking them all (Citus
routes by the distribution column's values, and the shard's users are not known yet). So the
question goes to a function Citus distributes by a key (engine/stores/sql/citus.py, `DUE`): called
with a key of the shard's (`engine.shard_hash.shard_keys`), outside any transaction, Citus sends
the call to that shard's node, where it reads the shard's own table: one task, no multi-shard
query. The read is unlocked, as the claim's first read always was: the claim that follows locks.

The shards are taken in turn (a cursor per kind), so that every shard's due rows are claimed in
a round, the earliest due first within each shard. What a look ahead (`ahead`) found serves the
claims that follow it as of the same instant: the timer sweep asks which users are due, then
claims shard by shard, and each shard's read is a trip through the coordinator to its node.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from sqlalchemy.engine import Engine

from engine.shard_hash import shard_keys

Rows = list[tuple[str, str]]  # (user_id, id) of due rows


class ShardReads:
    """The due rows of the next shard that has any, by the functions of `DUE`."""

    def __init__(self, engine: Engine, shards: int) -> None:
        self.engine = engine
        self.keys = shard_keys(shards)
        self.cursor: dict[str, int] = {}  # function -> the shard to look at first
        # function -> the instant of its last look ahead, and what it found in each shard it read
        self.seen: dict[str, tuple[datetime, dict[int, Rows]]] = {}

    def due(self, function: str, now: datetime, limit: int, shards: Iterable[int] | None = None,
            ) -> list[tuple[str, str]]:
        """(user_id, id) of up to `limit` rows due by `now` of the first of `shards` (default:
        all) from the cursor on that has any (a claim's); the cursor moves past it. A shard the
        last look ahead read as of `now` is not read again: what it found is taken (once)."""
        for shard, found in self._scan(function, now, limit, shards, self._looked(function, now)):
            self.cursor[function] = shard + 1
            return found[:limit]
        return []

    def ahead(self, function: str, now: datetime, limit: int, shards: Iterable[int] | None = None,
              ) -> list[tuple[str, str]]:
        """What the next claims, one shard each (`due`), would take of up to `limit` rows in all:
        the shards' due rows from the cursor on, until `limit`; the cursor stays."""
        rows: list[tuple[str, str]] = []
        looked: dict[int, Rows] = {}
        self.seen[function] = (now, looked)
        for _, found in self._scan(function, now, limit, shards, read=looked):
            rows += found[:limit - len(rows)]
            if len(rows) >= limit:
                break
        return rows

    def _looked(self, function: str, now: datetime) -> dict[int, Rows]:
        """What the last look ahead as of `now` found in each shard it read; nothing if it was
        as of another instant."""
        at, looked = self.seen.get(function, (None, {}))
        return looked if at == now else {}

    def _scan(self, function: str, now: datetime, limit: int, shards: Iterable[int] | None,
              known: dict[int, Rows] | None = None, read: dict[int, Rows] | None = None,
              ) -> Iterator[tuple[int, Rows]]:
        """Each shard of `shards` (default: all) from the cursor on that has due rows, with them;
        a shard in `known` is taken from there (and left empty), the others read, and kept in `read`."""
        wanted = sorted(set(range(len(self.keys)) if shards is None else shards))
        start = self.cursor.get(function, 0)
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for shard in [s for s in wanted if s >= start] + [s for s in wanted if s < start]:
                if known is not None and shard in known:
                    found, known[shard] = known[shard], []  # taken once
                else:
                    due = conn.exec_driver_sql(f"SELECT {function}(%s, %s, %s)",
                                               (self.keys[shard], now, int(limit))).scalar_one()
                    found = [(str(user), str(key)) for user, key in due or ()]
                if read is not None:
                    read[shard] = found
                if found:
                    yield shard, found

    def owned(self, worker: str) -> list[int]:
        """The partitions (shards) `worker` holds a live lease on (a read of a reference table)."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            rows = conn.exec_driver_sql("SELECT part FROM partition_leases WHERE owner = %s AND expires_at > now()",
                                        (worker,)).all()
        return [int(r[0]) for r in rows]
