"""What tells a cached user's state is still the database's, on PostgreSQL (`Stamp`).

Several workers and every worker's HTTP routes write users' rows, so a worker's cache cannot
trust itself the way SQLite's single writer can. Every change a user's cached state reflects
rewrites a row the stamp covers: the profile row (its fields, the consent ledger appended
beside it, the engagement counts, an erasure deleting it) and the user's instances (entries,
steps; the messages the engine adds are written with their instance). PostgreSQL gives each
row the id of the transaction that last wrote it (`xmin`), so one statement over a batch's
users, after their advisory locks are held, says whose state changed since it was read: the
profile's `xmin` and the count and newest `xmin` of the user's instances. A transaction of
this worker that writes a cached user stamps the state with its own id, which is what those
rows then carry; any stamp that does not match, for whatever reason, reloads the user.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import NamedTuple

from engine.stores.sql.driver import Driver

XID_MASK = 0xFFFFFFFF  # txid_current() carries the epoch above the 32 bits `xmin` shows


class Stamp(NamedTuple):
    """A user's rows as read: the profile's xmin (None: no profile row), how many instances the
    user has, and their newest xmin (None: none)."""

    profile: int | None
    instances: int
    newest: int | None


NONE = Stamp(None, 0, None)

_STAMPS = ("SELECT u, p.xmin::text::bigint, i.n, i.x, txid_current() FROM unnest(%b::varchar[]) AS u "
           "LEFT JOIN profiles p ON p.user_id = u LEFT JOIN (SELECT user_id, count(*) AS n, "
           "max(xmin::text::bigint) AS x FROM instances WHERE user_id = ANY(%b::varchar[]) GROUP BY user_id) AS i "
           "ON i.user_id = u")
# One pass over each table for the whole batch: a subquery a user, as it was, became 500 scans of
# the whole instances table whenever its statistics were older than its rows (mid-burst, before
# autovacuum analyzed it, the planner took it for empty): 60-120 ms a batch against 2-5.
_PROFILES = ("SELECT p.user_id, p.xmin::text::bigint, p.phone, s.since FROM profiles p "
             "LEFT JOIN suppressed_numbers s ON s.number = p.phone WHERE p.user_id = ANY(%b::varchar[])")


def read_stamps(db: Driver, user_ids: Collection[str]) -> tuple[dict[str, Stamp], int]:
    """The users' stamps as committed now (read after their locks: nothing else writes them until
    this transaction ends), and this transaction's own id as `xmin` will show it."""
    users = list(user_ids)
    rows = db.rows(_STAMPS, [users, users])
    stamps = {str(u): Stamp(p, int(n or 0), x) for u, p, n, x, _ in rows}
    return stamps, int(rows[0][4]) & XID_MASK if rows else 0


def profile_stamps(db: Driver, user_ids: Collection[str]) -> tuple[dict[str, int], dict[str, datetime | None]]:
    """The xmin of each of these users' profile rows (a user without one is left out), and in the
    same statement whether their phone numbers are suppressed (number -> since, None: not), which
    the dispatcher asks next."""
    stamps: dict[str, int] = {}
    numbers: dict[str, datetime | None] = {}
    for user_id, xmin, phone, since in db.rows(_PROFILES, [list(user_ids)]):
        stamps[str(user_id)] = int(xmin)
        if phone:
            numbers[str(phone)] = db.read_time(since) if since is not None else None
    return stamps, numbers


def written(stamp: Stamp, xid: int, profile: bool, inserted: int, saved: bool) -> Stamp:
    """The stamp of a state after transaction `xid` wrote it: its profile row if `profile`, `inserted`
    new instances and some saved if `saved`."""
    return Stamp(xid if profile else stamp.profile, stamp.instances + inserted, xid if saved else stamp.newest)
