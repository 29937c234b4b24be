"""The dispatcher's fenced writes to the messages it claimed: each only where the claim still
holds the row (`held`: its token, its lease not run out), so that a dispatcher whose lease ran
out can neither record nor hand over. A statement a shard's users (`Partitioning.by_owner`), so
that on Citus each is routed; on PostgreSQL over binary arrays rather than a statement a message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.state import Fence, Partitioning
from engine.stats import Counts
from engine.stores.sql.counters import counts_of_recorded_sql
from engine.stores.sql.driver import Driver
from engine.stores.sql.schema import CHUNK, MESSAGE_KEY, chunks

# The leased messages about to be handed over, each found by its whole key (`{from}` and `{match}`,
# `_returning`). "Leased" is written so that it implies the predicate of no partial index: mid-burst
# the statistics still say few messages are leased, and the planner then read every leased message
# through `ix_messages_leased` (5-9 ms a dispatch window) rather than look up each by its key (0.4 ms).
_MARK = ("UPDATE messages SET dispatch = 'sending', next_attempt_at = {at}{from} WHERE {match} AND {users}"
         "messages.dispatch IN ('leased', 'sending') AND messages.dispatch <> 'sending' AND {held}")
_RENEW = "UPDATE messages SET next_attempt_at = {at}{from} WHERE {match} AND {users}{held}"
ATTEMPT_COLUMNS = ("dispatch", "status", "status_at", "attempts", "next_attempt_at", "provider", "provider_id", "error")


def held(db: Driver, fence: Fence) -> tuple[str, list[Any]]:
    """The condition that a row is still the fence's claim's, and its parameters (its columns
    written `{t}column`, as `Driver.update` takes a condition)."""
    return (f"{{t}}claim = {db.mark} AND {{t}}next_attempt_at > {db.mark}", [fence.token, db.time(fence.now)])


def record_attempts(db: Driver, rows: list[tuple[Any, ...]], fence: Fence, partitioning: Partitioning) -> set[str]:
    """Each row: the `ATTEMPT_COLUMNS` values, then the message id; only the rows `fence` holds are
    written, and their claim ends. Returns their ids. A statement a shard (`Partitioning.by_owner`); on
    PostgreSQL one UPDATE over binary arrays for each rather than a statement a message."""
    by_id = {row[-1]: row for row in rows}  # a message recorded twice: its last attempt
    condition, params = held(db, fence)
    recorded: set[str] = set()
    for users, ids in partitioning.by_owner(list(by_id), fence.users):
        only, named = db.of_users(users, partitioning.shards)  # Citus: routed by the users
        if users:  # each row found by its whole primary key
            key: str | tuple[str, ...] = MESSAGE_KEY
            keyed = [(*by_id[i][:-1], fence.users[i], i) for i in ids]
        else:
            key, keyed = "message_id", [by_id[i] for i in ids]
        recorded.update(str(m) for m in db.update("messages", key, ATTEMPT_COLUMNS, keyed, also="claim = NULL",
                                                  where=only + condition, params=[*named, *params]))
    return recorded


def mark_sending(db: Driver, message_ids: Sequence[str], fence: Fence, partitioning: Partitioning) -> set[str]:
    """Those of the leased messages `fence` holds, marked as about to be handed over, their lease to
    `fence.until`; returns their ids."""
    condition, params = held(db, fence)
    return _returning(db, _MARK.replace("{held}", condition), message_ids, fence, partitioning, params)


def renew(db: Driver, message_ids: Sequence[str], fence: Fence, partitioning: Partitioning) -> set[str]:
    """The lease of those of these messages `fence` holds extended to `fence.until`; returns their ids."""
    condition, params = held(db, fence)
    return _returning(db, _RENEW.replace("{held}", condition), message_ids, fence, partitioning, params)


def _returning(db: Driver, sql: str, message_ids: Sequence[str], fence: Fence, partitioning: Partitioning,
               after: list[Any]) -> set[str]:
    """`sql` (an UPDATE setting `{at}` to `fence.until` for the rows `{from}` and `{match}` name,
    then `{users}` on Citus, its other columns written `{t}column`) a shard and a chunk at a time,
    each row by its whole key where `fence` knows its user (`Driver.keyed`), else by its id; the
    ids of the rows it changed."""
    changed: set[str] = set()
    for users, ids in partitioning.by_owner(message_ids, fence.users):
        only, named = db.of_users(users, partitioning.shards)  # Citus: routed by the users
        text = sql.replace("{at}", db.mark).replace("{users}", only).replace("{t}", "messages.")
        for chunk in chunks(ids):
            if users:
                statement, keys = _by_key(db, text, chunk, fence)
                rows = db.rows(f"{statement} RETURNING messages.message_id",
                               [db.time(fence.until), *keys, *named, *after])
            else:
                statement = text.replace("{from}", "").replace("{match}", "messages.message_id IN ({in})")
                rows = db.where_in(f"{statement} RETURNING messages.message_id", chunk, after,
                                   first=[db.time(fence.until)])
            changed.update(str(r[0]) for r in rows)
    return changed


def _by_key(db: Driver, sql: str, message_ids: Sequence[str], fence: Fence) -> tuple[str, list[Any]]:
    """`sql`'s `{from}` and `{match}` naming these messages (each one's user known to `fence`) by
    their whole key (`Driver.keyed`), and the key relation's parameters, which follow the SET's."""
    relation, keys = db.keyed(MESSAGE_KEY, [(fence.users[i], i) for i in message_ids])
    return sql.replace("{from}", f" FROM {relation}").replace("{match}", db.on_keys("messages", MESSAGE_KEY)), keys


def record_and_mark(db: Driver, rows: list[tuple[Any, ...]], sending: Sequence[str], fence: Fence,
                    partitioning: Partitioning, tallies: Mapping[str, Counts] | None = None, writer: str = "",
                    ) -> tuple[set[str], set[str], bool]:
    """`record_attempts` and `mark_sending` (the answers so far, the next messages to hand over):
    on PostgreSQL one statement a shard's users, data-modifying CTEs whose rows are never the same
    (a message answered is no longer leased); off Citus the same statement adds to `writer`'s
    counters what recording each message moves (`tallies`: message_id -> counts), for the rows it
    recorded. Returns (recorded, marked, whether the counters were added)."""
    if db.sqlite or not rows or len(rows) > CHUNK or len(sending) > CHUNK:
        return record_attempts(db, rows, fence, partitioning), (
            mark_sending(db, sending, fence, partitioning) if sending else set()), False
    counting = tallies is not None and not partitioning.shards  # Citus: the counters are the coordinator's
    counters = _counter_rows(tallies or {}, writer) if counting else []
    by_id = {row[-1]: row for row in rows}
    marking = set(sending) - set(by_id)
    recorded: set[str] = set()
    marked: set[str] = set()
    for users, ids in partitioning.by_owner([*by_id, *marking], fence.users):
        to_mark = [i for i in ids if i in marking]
        if not users or not any(i in by_id for i in ids):  # nothing to record, or owners unknown
            recorded |= record_attempts(db, [by_id[i] for i in ids if i in by_id], fence, partitioning)
            marked |= mark_sending(db, to_mark, fence, partitioning) if to_mark else set()
            continue
        mine = [(*by_id[i][:-1], fence.users[i], i) for i in ids if i in by_id]  # by the whole key
        for message_id, was_recorded in _write_window(db, users, mine, to_mark, counters, fence,
                                                      partitioning.shards):
            (recorded if was_recorded else marked).add(str(message_id))
    return recorded, marked, counting


def _counter_rows(tallies: Mapping[str, Counts], writer: str) -> list[tuple[Any, ...]]:
    """(message_id, the counter's key, writer, value) of every count a message's record moves."""
    return [(message_id, *key, writer, float(value)) for message_id, counts in tallies.items()
            for key, value in counts.items() if value]


def _write_window(db: Driver, users: list[str], rows: list[tuple[Any, ...]], to_mark: list[str],
                  counters: list[tuple[Any, ...]], fence: Fence, routed: bool) -> Sequence[Sequence[Any]]:
    """PostgreSQL, one group of users (`routed`: on Citus, named so that the statement is routed to
    their shard): (message_id, recorded?) of each row written, each found by its whole key (rows:
    the `ATTEMPT_COLUMNS` values, the user, the message id)."""
    condition, params = held(db, fence)
    only, named = db.of_users(users, routed)
    record, floats = db.update_over_arrays("messages", MESSAGE_KEY, ATTEMPT_COLUMNS, also="claim = NULL",
                                           where=only + condition)
    ctes, after = [f"recorded AS ({record})"], [*named, *params]
    if to_mark:
        mark, keys = _by_key(db, _MARK.replace("{held}", condition).replace("{at}", db.mark).replace("{users}", only)
                             .replace("{t}", "messages."), to_mark, fence)
        ctes.append(f"marked AS ({mark} RETURNING messages.message_id)")
        after += [db.time(fence.until), *keys, *named, *params]
    if counters:
        ctes.append(f"counted AS ({counts_of_recorded_sql(db)})")
        after += [list(column) for column in zip(*counters, strict=True)]
    marked = " UNION ALL SELECT message_id, false FROM marked" if to_mark else ""
    return db.run_over_arrays((f"WITH {', '.join(ctes)} SELECT message_id, true FROM recorded{marked}", floats),
                              rows, after)
