"""The journeys' counters on SQL (`journey_counters`, schema 20): what each transaction adds,
written at its end as one upsert of every changed counter (`Driver.write`), and their sums read by
`GET /v1/journeys/{id}/stats`.

A counter row is keyed by its `writer` besides the journey, version, hour of entry, path and
name (engine.stats): the engine of each worker, and apart from it that worker's dispatcher and
its host routes, each add to rows of their own, so writers running at once never wait on one
another's row, and a read sums the writers. The rows are written sorted by key, so two
transactions of one writer take their row locks in the same order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.state import Partitioning
from engine.stats import Counts, Key, Receipt, merge, received, status_counts
from engine.stores.sql.driver import Driver
from engine.stores.sql.schema import MESSAGE_KEY, chunks

_COLUMNS = ("journey_id", "version", "hour", "path", "name", "writer", "value")
_ADDED = (f"ON CONFLICT ({', '.join(_COLUMNS[:-1])}) "  # a counter's key: its value added to, never replaced
          "DO UPDATE SET value = journey_counters.value + excluded.value")
_UPSERT = f"INSERT INTO journey_counters ({', '.join(_COLUMNS)}) VALUES ({{marks}}) {_ADDED}"


def add_counts(db: Driver, counts: Mapping[Key, float], writer: str) -> None:
    """Add `counts` to this writer's rows, in key order: through `Driver.write`, so on PostgreSQL
    a batch is one statement over binary arrays rather than an upsert a counter."""
    db.write(_UPSERT.format(marks=db.marks(7)), [(*key, writer, value) for key, value in sorted(counts.items())
                                                   if value])


def counts_of_recorded_sql(db: Driver) -> str:
    """PostgreSQL, for a statement whose CTE `recorded` returns the message ids it wrote: an
    upsert (as `add_counts`) of the rows of arrays (message_id, the counter's key, writer, value)
    whose message `recorded` wrote, summed by key, in key order."""
    types = {"message_id": "character varying", **db.column_types("journey_counters", _COLUMNS)}
    names = ("message_id", *_COLUMNS)
    key = ", ".join(f"v.{c}" for c in _COLUMNS[:-1])
    return (f"INSERT INTO journey_counters ({', '.join(_COLUMNS)}) SELECT {key}, sum(v.value) "
            f"FROM unnest({', '.join(f'%b::{types[c]}[]' for c in names)}) AS v({', '.join(names)}) "
            "WHERE v.message_id IN (SELECT message_id FROM recorded) "
            f"GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6 {_ADDED}")


Added = Mapping[str, tuple[str | None, str | None, str]]
"""The messages a transaction is adding, not yet written: message_id -> (journey_id, tally, channel)."""


_RECEIPTS = "SELECT m.message_id, m.user_id, m.journey_id, m.tally, m.channel, m.status, m.engaged"


def receipts(db: Driver, changes: Sequence[tuple[str | None, str, str]], added: Added | None = None,
             partitioning: Partitioning = Partitioning()) -> list[Receipt | None]:
    """Each (user_id, message_id, new status) change as it lands, in order (engine.stats.received):
    the message's status after it, never backwards, its engagement counted once per kind, what the
    counters move; None for a message neither stored nor in `added` (still queued), or stored as
    another user's (a user None: whoever's it is). The stored rows are locked on PostgreSQL until
    the transaction ends, so no other writer moves them between this read and the write; they are
    read a shard's users at a time (`Partitioning.by_owner`), so that on Citus the read is routed
    (messages of no user named are read unlocked there: Citus locks rows in routed queries only)."""
    if not changes:
        return []
    found: dict[str, list[Any]] = {m: [None, *row, "queued", ""] for m, row in (added or {}).items()}
    pairs = {str(n): pair for n, pair in enumerate(sorted({(u or "", m) for u, m, _ in changes if m not in found}))}
    lock = "" if db.sqlite else " ORDER BY m.message_id FOR UPDATE OF m"
    for users, keys in partitioning.by_owner(list(pairs), {k: u for k, (u, _) in pairs.items() if u}):
        if users:  # each by its whole key (`Driver.keyed`); the users named again on Citus, to route it
            only, named = db.of_users(users, partitioning.shards)
            where = f" WHERE {only.replace('{t}', 'm.').removesuffix(' AND ')}" if only else ""
            for chunk in chunks(sorted(pairs[k] for k in keys)):
                relation, params = db.keyed(MESSAGE_KEY, chunk)
                for message_id, *row in db.rows(f"{_RECEIPTS} FROM {relation} JOIN messages AS m ON "
                                                f"{db.on_keys('m', MESSAGE_KEY)}{where}{lock}", [*params, *named]):
                    found[str(message_id)] = row
            continue
        for ids in chunks(sorted({pairs[k][1] for k in keys})):  # whoever's they are: by the id alone
            for message_id, *row in db.where_in(f"{_RECEIPTS} FROM messages AS m WHERE m.message_id IN ({{in}})"
                                                + (lock if not partitioning.shards else ""), ids):
                found[str(message_id)] = row
    landed: list[Receipt | None] = []
    for user_id, message_id, status in changes:
        stored = found.get(message_id)
        if stored is None or (user_id and stored[0] is not None and stored[0] != user_id):
            landed.append(None)
            continue
        receipt = received(stored[1], stored[2], stored[3], stored[4], stored[5], status)
        stored[4], stored[5] = receipt.status, receipt.engaged
        landed.append(receipt)
    return landed


def moved(rows: Sequence[Sequence[Any]], old: str, new: str) -> Counts:
    """What these messages, rows of (journey_id, tally, channel), moving from `old` to `new` move."""
    counts: Counts = {}
    for journey_id, tally, channel in rows:
        merge(counts, status_counts(journey_id, tally, channel, old, new))
    return counts


def read_counts(db: Driver, journey_id: str, version: str | None, low: str | None, high: str | None,
                ) -> list[tuple[str, str, float]]:
    """(path, name, sum over writers and hours) of the journey's counters."""
    m = db.mark
    where, params = [f"journey_id = {m}"], [journey_id]
    for condition, value in ((f"version = {m}", version), (f"hour >= {m}", low), (f"hour < {m}", high)):
        if value is not None:
            where.append(condition)
            params.append(value)
    rows = db.rows(f"SELECT path, name, sum(value) FROM journey_counters WHERE {' AND '.join(where)} "
                   "GROUP BY path, name", params)
    return [(str(path), str(name), float(value)) for path, name, value in rows]
