"""One SQL transaction as the engine sees it (`Tx`), and the per-user state it reads.

`prefetch` loads what the engine will read for a batch of users in a few queries; writes
are buffered and flushed with executemany at the end. With a `StateCache` (SQLite, where
this process is the only writer) committed per-user state stays in memory between
transactions, so a user seen before costs no query at all; a transaction that fails evicts
every user it touched, so the cache never holds anything the database does not.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from channels import ConsentRecord, Profile, SentRecord
from engine.events import Event
from engine.runtime import EntryHistory
from engine.state import PARTITIONS, Instance, Send, Skip, TimerRef, Trace, partition_of
from engine.stores.sql.cache import StateCache, UserState, forget_sends_before
from engine.stores.sql.claims import Owner, claim_queued, due_timer_users, due_timers, inbox_rows, quarantine_queued
from engine.stores.sql.driver import Driver
from engine.stores.sql.schema import chunks
from engine.stores.sql.suppression import TxSuppressions
from engine.stores.sql.user_locks import lock_users


class SqlTx:
    """One transaction: user state from the cache or prefetch, writes buffered until flush."""

    def __init__(self, conn: Connection, dialect: str, cache: StateCache | None, owner: Owner | None = None,
                 partitions: int = PARTITIONS) -> None:
        self.conn = conn
        self.owner = owner  # PostgreSQL workers: the sweeps take only this worker's partitions
        self._partitions = partitions
        self.dialect = dialect
        self.cache = cache
        self.db = Driver(conn, dialect)
        self.users: dict[str, UserState] = {}
        self._since: datetime | None = None
        self._loaded_instances: dict[str, Instance] = {}
        self._w_instances: dict[str, Instance] = {}
        self._w_profiles: dict[str, Profile] = {}
        self._w_consents: list[tuple[Any, ...]] = []
        self._w_timers: dict[str, tuple[Any, ...]] = {}
        self._w_cancel: set[str] = set()
        self._w_messages: list[tuple[Any, ...]] = []
        self._w_status: list[tuple[Any, ...]] = []
        self._w_skips: list[tuple[Any, ...]] = []
        self.suppressions = TxSuppressions(self.db, cache)

    # --- reads ----------------------------------------------------------------------------

    def prefetch(self, user_ids: Collection[str], since: datetime) -> None:
        if self._since is None or since < self._since:
            self._since = since
        missing = []
        for user_id in user_ids:
            if user_id in self.users:
                continue
            cached = self.cache.users.get(user_id) if self.cache is not None else None
            if cached is not None and cached.sends_since <= since:
                forget_sends_before(cached, since)
                self.users[user_id] = cached
            else:
                missing.append(user_id)
        lock_users(self.db, missing)  # PostgreSQL: one writer per user at a time, across workers
        for chunk in chunks(missing):
            self._load(chunk, since)
        self.suppressions.load({p for p in (self._phone(u) for u in user_ids) if p})

    def _phone(self, user_id: str) -> str | None:
        state = self.users.get(user_id)
        return state.profile.phone if state is not None and state.profile is not None else None

    def _load(self, users: Sequence[str], since: datetime) -> None:
        states = {u: UserState(since) for u in users}
        self._load_profiles(states)
        self._load_instances(states)
        self._load_sends(states, since)
        self.users.update(states)
        if self.cache is not None:
            self.cache.add(states)

    def load_profiles(self, user_ids: Sequence[str]) -> dict[str, Profile]:
        """Just the profiles (with their consent ledgers) of these users, read as committed."""
        states = {u: UserState(datetime.min) for u in user_ids}
        for chunk in chunks(list(states)):
            self._load_profiles({u: states[u] for u in chunk})
        return {u: state.profile for u, state in states.items() if state.profile is not None}

    def _load_profiles(self, states: dict[str, UserState]) -> None:
        db, users = self.db, list(states)
        query = ("SELECT user_id, channel, category, granted, source, at FROM consents c WHERE user_id IN ({in}) "
                 "AND NOT EXISTS (SELECT 1 FROM erasures e WHERE e.user_id = c.user_id AND e.consents_through >= c.id) "
                 "ORDER BY user_id, seq")  # rows kept as proof by an erasure are no longer the person's consent
        ledgers: dict[str, list[ConsentRecord]] = {}
        times: dict[Any, datetime] = {}  # a ledger's timestamps repeat (imports, STOP campaigns): parse each once
        for user_id, channel, category, granted, source, at in db.where_in(query, users):
            when = times.get(at)
            if when is None:
                when = times[at] = db.read_time(at)
            ledgers.setdefault(user_id, []).append(ConsentRecord(channel, category, bool(granted), source, when))
        for user_id, doc in db.where_in("SELECT user_id, doc FROM profiles WHERE user_id IN ({in})", users):
            states[user_id].profile = _stored_profile(db.read_json(doc), tuple(ledgers.pop(user_id, ())))
        for user_id, records in ledgers.items():  # consents given before any profile was stored
            states[user_id].profile = Profile(user_id, consents=tuple(records))
        for state in states.values():
            state.consents_stored = len(state.profile.consents) if state.profile else 0

    def _load_instances(self, states: dict[str, UserState]) -> None:
        """Active instances, and each journey's (and key's) latest entry for the re-entry rules:
        an active instance is always its journey's latest entry, so it sorts last on a tie."""
        db = self.db
        query = ('SELECT user_id, journey_id, "key", instance_id, entered_at, '
                 "CASE WHEN status = 'active' THEN doc END FROM instances WHERE user_id IN ({in}) "
                 "ORDER BY entered_at, CASE WHEN status = 'active' THEN 1 ELSE 0 END")
        for user_id, journey_id, key, instance_id, entered_at, doc in db.where_in(query, list(states)):
            state = states[user_id]
            state.entries[(journey_id, _key(key))] = (instance_id, db.read_time(entered_at))
            if doc is not None:
                state.active[instance_id] = Instance.from_dict(db.read_json(doc))

    def _load_sends(self, states: dict[str, UserState], since: datetime) -> None:
        db = self.db
        query = ("SELECT user_id, channel, category, at, message_id FROM messages "
                 "WHERE user_id IN ({in}) AND at >= " + db.mark + " ORDER BY at")
        for user_id, channel, category, at, message_id in db.where_in(query, list(states), [db.time(since)]):
            state = states[user_id]
            state.sends.append(SentRecord(channel, category, db.read_time(at)))
            state.latest[channel] = message_id

    def _part(self, user_id: str) -> int:
        return partition_of(user_id, self._partitions)

    def _state(self, user_id: str) -> UserState:
        state = self.users.get(user_id)
        if state is None:
            self.prefetch([user_id], self._since or datetime.fromtimestamp(0).astimezone())
            state = self.users[user_id]
        return state

    def remember_events(self, event_ids: Sequence[str]) -> set[str]:
        unique = list(dict.fromkeys(event_ids))
        if self.dialect == "sqlite":
            return self._remember_single_writer(unique)
        if not unique:
            return set()
        rows = self.db.rows("INSERT INTO event_ids (id) SELECT unnest(%b::varchar[]) ON CONFLICT DO NOTHING "
                            "RETURNING id", [unique])  # one statement text: nothing compiled per batch
        return {r[0] for r in rows}

    def _remember_single_writer(self, unique: list[str]) -> set[str]:
        """SQLite has one writer at a time: look the ids up, then insert the new ones in one executemany
        (cheaper than a many-row INSERT ... RETURNING, which is compiled afresh for every size)."""
        seen: set[str] = set()
        for chunk in chunks(unique):
            seen.update(r[0] for r in self.db.where_in("SELECT id FROM event_ids WHERE id IN ({in})", chunk))
        new = [i for i in unique if i not in seen]
        self.db.write(_statements(self.db)["event_ids"], [(i,) for i in new])
        return set(new)

    def get_profile(self, user_id: str) -> Profile | None:
        return self._state(user_id).profile

    def active_instances(self, user_id: str) -> Sequence[Instance]:
        return list(self._state(user_id).active.values())

    def get_instance(self, instance_id: str) -> Instance | None:
        self.load_instances([instance_id])
        return self._loaded_instances.get(instance_id)

    def load_instances(self, instance_ids: Sequence[str]) -> None:
        """Instances by id (a timer sweep's), from the cache where it has them."""
        wanted = [i for i in instance_ids if i not in self._loaded_instances]
        if self.cache is not None:
            wanted = [i for i in wanted if not self._from_cache(i)]
        for chunk in chunks(wanted):
            for (doc,) in self.db.where_in("SELECT doc FROM instances WHERE instance_id IN ({in})", chunk):
                instance = Instance.from_dict(self.db.read_json(doc))
                self._loaded_instances[instance.instance_id] = instance

    def _from_cache(self, instance_id: str) -> bool:
        assert self.cache is not None
        state = self.cache.owner(instance_id)
        if state is None:
            return False
        instance = state.active[instance_id]
        self.users.setdefault(instance.user_id, state)
        self._loaded_instances[instance_id] = instance
        return True

    def active_instances_of(self, journey_id: str, limit: int) -> Sequence[Instance]:
        db = self.db
        rows = db.rows(f"SELECT doc FROM instances WHERE journey_id = {db.mark} AND status = 'active' "
                       f"LIMIT {int(limit)}", [journey_id])
        found = [Instance.from_dict(db.read_json(doc)) for (doc,) in rows]
        for instance in found:
            self._loaded_instances.setdefault(instance.instance_id, instance)
        return found

    def entry_history(self, journey_id: str, user_id: str, key: str | None) -> EntryHistory | None:
        state = self._state(user_id)
        last = state.entries.get((journey_id, _key(key)))
        return None if last is None else EntryHistory(last[0] in state.active, last[1])

    def recent_sends(self, user_id: str, since: datetime) -> Sequence[SentRecord]:
        sends = self._state(user_id).sends
        return sends if not sends or sends[0].at >= since else [s for s in sends if s.at >= since]

    def latest_message(self, user_id: str, channel: str) -> str | None:
        state = self._state(user_id)
        if channel not in state.latest:
            mark = self.db.mark
            rows = self.db.rows("SELECT message_id FROM messages WHERE user_id = " + mark + " AND channel = " + mark
                                + " ORDER BY at DESC LIMIT 1", [user_id, channel])
            state.latest[channel] = next((r[0] for r in rows), None)
        return state.latest[channel]

    def due_timer_users(self, now: datetime, limit: int) -> set[str]:
        """From the timers' own user column (no instance read); a timer from before schema 11
        has none, and its instance says."""
        users, unknown = due_timer_users(self.db, self.owner, now, limit)
        if unknown:
            self.load_instances(unknown)
            users |= {self._loaded_instances[i].user_id for i in unknown if i in self._loaded_instances}
        return users

    def claim_due_timers(self, now: datetime, limit: int) -> Sequence[tuple[str, str]]:
        due = due_timers(self.db, self.owner, now, limit, lock=not self.db.sqlite)
        self._delete_timers([t for _, t in due])
        self.load_instances([i for i, _ in due])
        return due

    # --- the inbox ------------------------------------------------------------------------

    def queue_events(self, events: Sequence[Event]) -> None:
        self.db.write(_statements(self.db)["inbox"], inbox_rows(self.db, events, self._part))

    def claim_queued(self, limit: int) -> list[Event]:
        """The oldest queued events (of this worker's partitions), deleted in this transaction."""
        return claim_queued(self.db, self.owner, limit)

    def quarantine_queued(self, error: str) -> str | None:
        return quarantine_queued(self.db, self.owner, error)

    # --- writes ---------------------------------------------------------------------------

    def suppressed_since(self, phone: str) -> datetime | None:
        return self.suppressions.since(phone)

    def record_suppression(self, phone: str, keyword: str, at: datetime, source: str) -> None:
        self.suppressions.record(phone, keyword, at, source)

    def put_profile(self, profile: Profile) -> None:
        state = self._state(profile.user_id)
        for seq, record in enumerate(profile.consents[state.consents_stored:], state.consents_stored):
            self._w_consents.append((profile.user_id, seq, record.channel, record.category, record.granted,
                                     record.source, self.db.time(record.at)))
        state.consents_stored = max(state.consents_stored, len(profile.consents))
        state.profile = profile
        self._w_profiles[profile.user_id] = profile

    def set_message_status(self, message_id: str, status: str, at: datetime) -> None:
        self._w_status.append((status, self.db.time(at), message_id))

    def save_instance(self, instance: Instance) -> None:
        state = self._state(instance.user_id)
        if instance.instance_id not in state.active and instance.instance_id not in self._loaded_instances:
            state.entries[(instance.journey_id, _key(instance.key))] = (instance.instance_id, instance.entered_at)
        self._loaded_instances[instance.instance_id] = instance
        self._w_instances[instance.instance_id] = instance
        if instance.active:
            state.active[instance.instance_id] = instance
            if self.cache is not None:
                self.cache.owners[instance.instance_id] = instance.user_id
        else:
            state.active.pop(instance.instance_id, None)
            if self.cache is not None:
                self.cache.owners.pop(instance.instance_id, None)

    def add_message(self, send: Send) -> None:
        self._w_messages.append(_message_row(self.db, send))
        state = self._state(send.user_id)
        state.latest[send.channel] = send.message_id
        state.sends.append(SentRecord(send.channel, send.category, send.at))

    def add_timer(self, instance_id: str, timer: TimerRef) -> None:
        self._w_cancel.discard(timer.timer_id)
        instance = self._loaded_instances.get(instance_id)  # saved just before its commands
        user_id = instance.user_id if instance is not None else ""
        self._w_timers[timer.timer_id] = (timer.timer_id, instance_id, self.db.time(timer.due), user_id,
                                          self._part(user_id))

    def cancel_timer(self, timer_id: str) -> None:
        if self._w_timers.pop(timer_id, None) is None:
            self._w_cancel.add(timer_id)

    def add_skip(self, skip: Skip) -> None:
        self._w_skips.append((skip.instance_id, skip.user_id, skip.step, skip.message, skip.reason,
                              self.db.json([d.to_dict() for d in skip.decisions]), self.db.time(skip.at), skip.detail))

    def add_trace(self, trace: Trace) -> None:
        """The timeline is a dry-run view; production explains itself by messages and skips."""

    def flush(self) -> None:
        """Write everything buffered, one executemany per table."""
        self.suppressions.flush()
        db, sql = self.db, _statements(self.db)
        db.write(sql["profiles"], [(p.user_id, p.phone, db.json(_profile_doc(p))) for p in self._w_profiles.values()])
        db.write(sql["consents"], self._w_consents)
        db.write(sql["instances"], [_instance_row(db, i) for i in self._w_instances.values()])
        db.write(sql["timers"], list(self._w_timers.values()))
        self._delete_timers(sorted(self._w_cancel))
        db.write(sql["messages"], self._w_messages)
        db.write(sql["skips"], self._w_skips)
        db.update("messages", "message_id", ("status", "status_at"), self._w_status)  # feedback, a batch at once

    def _delete_timers(self, timer_ids: Sequence[str]) -> None:
        for chunk in chunks(timer_ids):
            self.db.run_in("DELETE FROM timers WHERE timer_id IN ({in})", chunk)


_STATEMENTS: dict[bool, dict[str, str]] = {}
INSTANCE_COLUMNS = ("instance_id", "journey_id", "version", "user_id", "key", "status", "step", "entered_at", "doc")
MESSAGE_COLUMNS = ("message_id", "instance_id", "journey_id", "user_id", "step", "message", "channel", "category",
                   "content", "cost", "encoding", "segments", "decisions", "at", "status", "dispatch",
                   "next_attempt_at", "attempts")


def _statements(db: Driver) -> dict[str, str]:
    """The flush statements for one dialect, built once."""
    if db.sqlite not in _STATEMENTS:
        _STATEMENTS[db.sqlite] = {
            "profiles": db.insert_sql("profiles", ("user_id", "phone", "doc"), ("user_id",), ("phone", "doc")),
            "consents": db.insert_sql("consents", ("user_id", "seq", "channel", "category", "granted", "source",
                                                   "at")),
            "instances": db.insert_sql("instances", INSTANCE_COLUMNS, ("instance_id",), ("status", "step", "doc")),
            "timers": db.insert_sql("timers", ("timer_id", "instance_id", "due", "user_id", "part")),
            "messages": db.insert_sql("messages", MESSAGE_COLUMNS),
            "skips": db.insert_sql("skips", ("instance_id", "user_id", "step", "message", "reason", "decisions",
                                             "at", "detail")),
            "event_ids": db.insert_sql("event_ids", ("id",)),
            "inbox": db.insert_sql("inbox", ("event_id", "user_id", "type", "at", "properties", "part")),
        }
    return _STATEMENTS[db.sqlite]


def _key(key: str | None) -> str:
    """Entry keys are part of a primary key: None is '', a real key is prefixed so it never is."""
    return "" if key is None else "=" + key


def _stored_profile(doc: dict[str, Any], consents: tuple[ConsentRecord, ...]) -> Profile:
    """A profile read back: it was validated when it came in, so it is not parsed again."""
    return Profile(doc["user_id"], doc.get("timezone"), doc.get("email"), doc.get("phone"), doc.get("push_token"),
                   bool(doc.get("rcs_capable")), doc.get("attributes") or {}, consents)


def _profile_doc(profile: Profile) -> dict[str, Any]:
    doc = profile.to_dict()
    doc.pop("consents")
    return doc


def _instance_row(db: Driver, instance: Instance) -> tuple[Any, ...]:
    return (instance.instance_id, instance.journey_id, instance.version, instance.user_id, instance.key,
            instance.status, instance.step, db.time(instance.entered_at), db.json(instance.to_dict()))


def _message_row(db: Driver, send: Send) -> tuple[Any, ...]:
    at = db.time(send.at)
    return (send.message_id, send.instance_id, send.journey_id, send.user_id, send.step, send.message,
            send.channel, send.category, db.json(dict(send.content)), send.cost, send.encoding, send.segments,
            db.json([d.to_dict() for d in send.decisions]), at, "queued", "pending", at, 0)
