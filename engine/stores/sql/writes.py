"""A transaction's writes, buffered as rows and flushed at its end with one executemany per table
(the statements built once per dialect): a batch of a thousand events costs a handful of
round trips, not thousands."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from channels import Profile
from channels.engagement import Engagement, engagement_stored
from channels.selection import shown
from engine.state import Instance, Partitioning, Send, Skip
from engine.stores.sql.driver import ARRAYS_FROM, Driver
from engine.stores.sql.schema import MESSAGE_KEY, chunks

INSTANCE_COLUMNS = ("instance_id", "journey_id", "version", "user_id", "key", "status", "step", "entered_at", "doc")
LINK_COLUMNS = ("code", "message_id", "user_id", "channel", "url", "position", "at", "hits", "machine_hits")
MESSAGE_COLUMNS = ("message_id", "instance_id", "journey_id", "user_id", "step", "message", "channel", "category",
                   "content", "cost", "encoding", "segments", "decisions", "at", "status", "dispatch",
                   "next_attempt_at", "attempts", "choice", "locale", "tally")
_STATEMENTS: dict[bool, dict[str, str]] = {}


class WriteBuffer:
    """The rows one transaction will write, by table, in the order the engine made them."""

    def __init__(self, db: Driver, partitioning: Partitioning = Partitioning()) -> None:
        self.db = db
        self.partitioning = partitioning
        self.instances: dict[str, Instance] = {}
        self.profiles: dict[str, Profile] = {}
        self.engagement: dict[str, Engagement] = {}  # user_id -> counts, for a profile not rewritten whole
        self.consents: list[tuple[Any, ...]] = []
        self.timers: dict[str, tuple[Any, ...]] = {}
        self.cancelled: dict[str, str] = {}  # timer_id -> its user (a distribution key on Citus)
        self.messages: list[tuple[Any, ...]] = []
        self.links: list[tuple[Any, ...]] = []
        self.statuses: list[tuple[Any, ...]] = []
        self.skips: list[tuple[Any, ...]] = []

    def add_message(self, send: Send, tally: str | None) -> None:
        self.messages.append((*_message_row(self.db, send), tally))
        for position, link in enumerate(send.links):
            self.links.append((link.code, send.message_id, send.user_id, send.channel, link.url, position,
                               self.db.time(send.at), 0, 0))

    def added(self) -> dict[str, tuple[str | None, str | None, str]]:
        """The messages this transaction adds: message_id -> (journey_id, tally, channel)."""
        return {row[0]: (row[2], row[-1], row[6]) for row in self.messages}

    def add_skip(self, skip: Skip) -> None:
        db = self.db
        self.skips.append((skip.instance_id, skip.user_id, skip.step, skip.message, skip.reason,
                           db.json([d.to_dict() for d in skip.decisions]), db.time(skip.at), skip.detail))

    def add_timer(self, timer_id: str, row: tuple[Any, ...]) -> None:
        self.cancelled.pop(timer_id, None)
        self.timers[timer_id] = row

    def cancel_timer(self, timer_id: str, user_id: str) -> None:
        """A timer set in this transaction is not written at all; one set before is deleted."""
        if self.timers.pop(timer_id, None) is None:
            self.cancelled[timer_id] = user_id

    def flush(self) -> None:
        """Write everything buffered, one executemany per table."""
        db, sql = self.db, statements(self.db)
        db.write(sql["profiles"], [(p.user_id, p.phone, db.json(_profile_doc(p)), _engagement(db, p.engagement))
                                   for p in self.profiles.values()])
        self._flush_engagement()
        db.write(sql["consents"], self.consents)
        db.write(sql["instances"], [_instance_row(db, i) for i in self.instances.values()])
        db.write(sql["timers"], list(self.timers.values()))
        delete_timers(db, sorted(self.cancelled.items(), key=lambda item: item[1]), self.partitioning.shards)
        db.write(sql["messages"], self.messages)
        db.write(sql["links"], self.links)
        db.write(sql["skips"], self.skips)
        self._flush_statuses()

    def _flush_statuses(self) -> None:
        """Feedback, as it landed (rows of status, at, engaged, user, message id): a statement a
        shard's users, naming them (routed on Citus; found by the primary key elsewhere)."""
        by_id = {row[-1]: row for row in self.statuses}
        for users, ids in self.partitioning.by_owner(list(by_id), {m: row[3] for m, row in by_id.items()}):
            only, named = self.db.of_users(users, self.partitioning.shards)  # Citus: routed
            if users:  # each row found by its whole primary key
                self.db.update("messages", MESSAGE_KEY, ("status", "status_at", "engaged"),
                               [by_id[m] for m in ids], where=only.removesuffix(" AND "), params=named)
            else:
                self.db.update("messages", "message_id", ("status", "status_at", "engaged"),
                               [(*by_id[m][:3], m) for m in ids])

    def _flush_engagement(self) -> None:
        """The counts of profiles not written whole above: one UPDATE per row on SQLite, one
        statement over arrays bound in binary on PostgreSQL (`Driver.update`), a shard's users each on
        Citus (the users named, so that it is routed to their shard)."""
        db = self.db
        counts = {user_id: e for user_id, e in self.engagement.items() if user_id not in self.profiles}
        for users in self.partitioning.by_shard(list(counts)):
            # over arrays, the users named route it (a statement a row is routed by its own user)
            only, named = db.of_users(users, self.partitioning.shards and len(users) >= ARRAYS_FROM)
            db.update("profiles", "user_id", ("engagement",), [(_engagement(db, counts[u]), u) for u in users],
                      where=only.removesuffix(" AND "), params=named)


_TIMER_KEY = ("timer_id", "user_id")


def delete_timers(db: Driver, timers: Sequence[tuple[str, str]], routed: bool = False) -> None:
    """Timers by (timer_id, user_id), each found by its whole key (`Driver.keyed`): named as a list
    of users beside a list of ids, a sweep's hundred timers were a scan of every timer whenever the
    statistics said the table was small. `routed` (Citus): the users named as a list, which routes
    the statement to their shard. (A timer from before schema 11 has user ''.)"""
    for chunk in chunks(timers):
        if routed:
            users = sorted({user for _, user in chunk})
            sql = f"DELETE FROM timers WHERE user_id IN ({db.marks(len(users))}) AND timer_id IN ({{in}})"
            db.run_in(sql, [timer for timer, _ in chunk], users)
        elif db.sqlite:  # a DELETE joins no other table there
            named, params = db.rows_of("timers", _TIMER_KEY, chunk)
            db.conn.exec_driver_sql(f"DELETE FROM timers WHERE {named}", tuple(params))
        else:
            relation, params = db.keyed(_TIMER_KEY, chunk)
            db.conn.exec_driver_sql(f"DELETE FROM timers AS t USING {relation} WHERE {db.on_keys('t', _TIMER_KEY)}",
                                    tuple(params))


def statements(db: Driver) -> dict[str, str]:
    """The flush statements for one dialect, built once."""
    if db.sqlite not in _STATEMENTS:
        _STATEMENTS[db.sqlite] = {
            "profiles": db.insert_sql("profiles", ("user_id", "phone", "doc", "engagement"), ("user_id",),
                                      ("phone", "doc", "engagement")),
            "consents": db.insert_sql("consents", ("user_id", "seq", "channel", "category", "granted", "source",
                                                   "at")),
            "instances": db.insert_sql("instances", INSTANCE_COLUMNS, ("user_id", "instance_id"),
                                       ("status", "step", "doc")),
            "timers": db.insert_sql("timers", ("timer_id", "instance_id", "due", "user_id", "part")),
            "messages": db.insert_sql("messages", MESSAGE_COLUMNS),
            "links": db.insert_sql("links", LINK_COLUMNS),
            "skips": db.insert_sql("skips", ("instance_id", "user_id", "step", "message", "reason", "decisions",
                                             "at", "detail")),
            "event_ids": db.insert_sql("event_ids", ("id",)),
            "inbox": db.insert_sql("inbox", ("event_id", "user_id", "type", "at", "properties", "part")),
        }
    return _STATEMENTS[db.sqlite]


def _profile_doc(profile: Profile) -> dict[str, Any]:
    doc = profile.to_dict()
    doc.pop("consents")
    doc.pop("engagement")  # a column of its own
    return doc


def _engagement(db: Driver, engagement: Engagement | None) -> str | None:
    return None if not engagement else db.json(engagement_stored(engagement))


def _instance_row(db: Driver, instance: Instance) -> tuple[Any, ...]:
    return (instance.instance_id, instance.journey_id, instance.version, instance.user_id, instance.key,
            instance.status, instance.step, db.time(instance.entered_at), db.json(instance.to_dict()))


def _message_row(db: Driver, send: Send) -> tuple[Any, ...]:
    at = db.time(send.at)
    return (send.message_id, send.instance_id, send.journey_id, send.user_id, send.step, send.message,
            send.channel, send.category, db.json(dict(send.content)), send.cost, send.encoding, send.segments,
            db.json(shown(send.decisions, send.choice)), at, "queued", "pending", at, 0,
            None if send.choice is None else db.json(send.choice.to_dict()), send.locale)
