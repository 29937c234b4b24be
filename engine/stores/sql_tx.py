"""One SQL transaction as the engine sees it (`Tx`), and the per-user state it reads.

`prefetch` loads what the engine will read for a batch of users in a few queries; writes
are buffered and flushed with executemany at the end. With a `StateCache` (SQLite, where
this process is the only writer) committed per-user state stays in memory between
transactions, so a user seen before costs no query at all; a transaction that fails evicts
every user it touched, so the cache never holds anything the database does not.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from channels import ConsentRecord, Profile, SentRecord
from engine.runtime import EntryHistory
from engine.state import Cancel, Instance, Outcome, Schedule, Send, Skip
from engine.stores.sql_schema import (
    CONSENTS,
    ENTRIES,
    EVENT_IDS,
    INSTANCES,
    MESSAGES,
    PROFILES,
    SKIPS,
    TIMERS,
    aware,
    chunks,
    dialect_insert,
    utc,
)


@dataclass(slots=True)
class UserState:
    """Everything the engine reads about one user, as committed (plus this transaction's writes)."""

    sends_since: datetime
    profile: Profile | None = None
    consents_stored: int = 0
    active: dict[str, Instance] = field(default_factory=dict)
    entries: dict[tuple[str, str], tuple[str, datetime]] = field(default_factory=dict)
    sends: list[SentRecord] = field(default_factory=list)
    latest: dict[str, str | None] = field(default_factory=dict)


@dataclass(slots=True)
class StateCache:
    """Committed user state kept between transactions, and which user owns each active instance."""

    users: dict[str, UserState] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    limit: int = 250_000

    def add(self, states: dict[str, UserState]) -> None:
        if len(self.users) + len(states) > self.limit:  # bounded: forget the older half
            self.evict(list(self.users)[: len(self.users) // 2])
        self.users.update(states)
        for user_id, state in states.items():
            for instance_id in state.active:
                self.owners[instance_id] = user_id

    def evict(self, user_ids: Collection[str]) -> None:
        for user_id in user_ids:
            state = self.users.pop(user_id, None)
            for instance_id in state.active if state else ():
                self.owners.pop(instance_id, None)

    def owner(self, instance_id: str) -> UserState | None:
        user_id = self.owners.get(instance_id)
        state = self.users.get(user_id) if user_id is not None else None
        return state if state is not None and instance_id in state.active else None


class SqlTx:
    """One transaction: user state from the cache or prefetch, writes buffered until flush."""

    def __init__(self, conn: Connection, dialect: str, cache: StateCache | None) -> None:
        self.conn = conn
        self.dialect = dialect
        self.cache = cache
        self.users: dict[str, UserState] = {}
        self._since: datetime | None = None
        self._loaded_instances: dict[str, Instance] = {}
        self._w_instances: dict[str, Instance] = {}
        self._w_entries: list[dict[str, Any]] = []
        self._w_profiles: dict[str, Profile] = {}
        self._w_consents: list[dict[str, Any]] = []
        self._w_timers: dict[str, dict[str, Any]] = {}
        self._w_cancel: set[str] = set()
        self._w_messages: list[dict[str, Any]] = []
        self._w_status: list[dict[str, Any]] = []
        self._w_skips: list[dict[str, Any]] = []

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
                _forget_sends_before(cached, since)
                self.users[user_id] = cached
            else:
                missing.append(user_id)
        for chunk in chunks(missing):
            self._load(chunk, since)

    def _load(self, users: Sequence[str], since: datetime) -> None:
        states = {u: UserState(since) for u in users}
        self._load_profiles(states)
        self._load_instances(states)
        self._load_entries(states)
        self._load_sends(states, since)
        self.users.update(states)
        if self.cache is not None:
            self.cache.add(states)

    def _load_profiles(self, states: dict[str, UserState]) -> None:
        users = list(states)
        for user_id, doc in self.conn.execute(select(PROFILES.c.user_id, PROFILES.c.doc)
                                              .where(PROFILES.c.user_id.in_(users))):
            states[user_id].profile = _stored_profile(doc)
        query = (select(CONSENTS.c.user_id, CONSENTS.c.channel, CONSENTS.c.category, CONSENTS.c.granted,
                        CONSENTS.c.source, CONSENTS.c.at)
                 .where(CONSENTS.c.user_id.in_(users)).order_by(CONSENTS.c.user_id, CONSENTS.c.seq))
        ledgers: dict[str, list[ConsentRecord]] = {}
        for user_id, channel, category, granted, source, at in self.conn.execute(query):
            ledgers.setdefault(user_id, []).append(ConsentRecord(channel, category, granted, source, aware(at)))
        for user_id, records in ledgers.items():
            state = states[user_id]
            state.profile = (state.profile or Profile(user_id)).with_consents(records)
            state.consents_stored = len(records)

    def _load_instances(self, states: dict[str, UserState]) -> None:
        query = select(INSTANCES.c.doc).where(INSTANCES.c.user_id.in_(list(states)), INSTANCES.c.status == "active")
        for (doc,) in self.conn.execute(query):
            instance = Instance.from_dict(doc)
            states[instance.user_id].active[instance.instance_id] = instance

    def _load_entries(self, states: dict[str, UserState]) -> None:
        query = select(ENTRIES.c.journey_id, ENTRIES.c.user_id, ENTRIES.c.key, ENTRIES.c.instance_id,
                       ENTRIES.c.entered_at).where(ENTRIES.c.user_id.in_(list(states)))
        for journey_id, user_id, key, instance_id, entered_at in self.conn.execute(query):
            states[user_id].entries[(journey_id, key)] = (instance_id, aware(entered_at))

    def _load_sends(self, states: dict[str, UserState], since: datetime) -> None:
        query = (select(MESSAGES.c.user_id, MESSAGES.c.channel, MESSAGES.c.category, MESSAGES.c.at,
                        MESSAGES.c.message_id)
                 .where(MESSAGES.c.user_id.in_(list(states)), MESSAGES.c.at >= utc(since))
                 .order_by(MESSAGES.c.at))
        for user_id, channel, category, at, message_id in self.conn.execute(query):
            state = states[user_id]
            state.sends.append(SentRecord(channel, category, aware(at)))
            state.latest[channel] = message_id

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
        new: set[str] = set()
        for chunk in chunks(unique):
            statement = dialect_insert(self.dialect, EVENT_IDS).values([{"id": i} for i in chunk])
            rows = self.conn.execute(statement.on_conflict_do_nothing().returning(EVENT_IDS.c.id))
            new.update(r[0] for r in rows)
        return new

    def _remember_single_writer(self, unique: list[str]) -> set[str]:
        """SQLite has one writer at a time: look the ids up, then insert the new ones in one executemany
        (cheaper than a many-row INSERT ... RETURNING, which is compiled afresh for every size)."""
        seen: set[str] = set()
        for chunk in chunks(unique):
            seen.update(r[0] for r in self.conn.execute(select(EVENT_IDS.c.id).where(EVENT_IDS.c.id.in_(chunk))))
        new = [i for i in unique if i not in seen]
        if new:
            self.conn.exec_driver_sql("INSERT INTO event_ids (id) VALUES (?)", [(i,) for i in new])
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
            for (doc,) in self.conn.execute(select(INSTANCES.c.doc).where(INSTANCES.c.instance_id.in_(chunk))):
                instance = Instance.from_dict(doc)
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
            row = self.conn.execute(select(MESSAGES.c.message_id).where(
                MESSAGES.c.user_id == user_id, MESSAGES.c.channel == channel)
                .order_by(MESSAGES.c.at.desc()).limit(1)).first()
            state.latest[channel] = row[0] if row else None
        return state.latest[channel]

    def claim_due_timers(self, now: datetime, limit: int) -> Sequence[tuple[str, str]]:
        query = select(TIMERS.c.instance_id, TIMERS.c.timer_id).where(TIMERS.c.due <= utc(now)) \
            .order_by(TIMERS.c.due).limit(limit)
        if self.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        due = [(str(i), str(t)) for i, t in self.conn.execute(query)]
        for chunk in chunks([t for _, t in due]):
            self.conn.execute(TIMERS.delete().where(TIMERS.c.timer_id.in_(chunk)))
        self.load_instances([i for i, _ in due])
        return due

    # --- writes ---------------------------------------------------------------------------

    def put_profile(self, profile: Profile) -> None:
        state = self._state(profile.user_id)
        for seq, record in enumerate(profile.consents[state.consents_stored:], state.consents_stored):
            self._w_consents.append({"user_id": profile.user_id, "seq": seq, "channel": record.channel,
                                     "category": record.category, "granted": record.granted,
                                     "source": record.source, "at": utc(record.at)})
        state.consents_stored = max(state.consents_stored, len(profile.consents))
        state.profile = profile
        self._w_profiles[profile.user_id] = profile

    def set_message_status(self, message_id: str, status: str, at: datetime) -> None:
        self._w_status.append({"b_id": message_id, "b_status": status, "b_at": utc(at)})

    def apply(self, outcome: Outcome) -> None:
        if outcome.instance is not None:
            self._save(outcome.instance)
        for command in outcome.commands:
            self._carry_out(command)

    def _save(self, instance: Instance) -> None:
        state = self._state(instance.user_id)
        if instance.instance_id not in state.active and instance.instance_id not in self._loaded_instances:
            state.entries[(instance.journey_id, _key(instance.key))] = (instance.instance_id, instance.entered_at)
            self._w_entries.append({"journey_id": instance.journey_id, "user_id": instance.user_id,
                                    "key": _key(instance.key), "instance_id": instance.instance_id,
                                    "entered_at": utc(instance.entered_at)})
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

    def _carry_out(self, command: object) -> None:
        if isinstance(command, Send):
            self._w_messages.append(_message_row(command))
            state = self._state(command.user_id)
            state.latest[command.channel] = command.message_id
            state.sends.append(SentRecord(command.channel, command.category, command.at))
        elif isinstance(command, Schedule):
            self._w_cancel.discard(command.timer.timer_id)
            self._w_timers[command.timer.timer_id] = {"timer_id": command.timer.timer_id,
                                                      "instance_id": command.instance_id,
                                                      "due": utc(command.timer.due)}
        elif isinstance(command, Cancel):
            if self._w_timers.pop(command.timer_id, None) is None:
                self._w_cancel.add(command.timer_id)
        elif isinstance(command, Skip):
            self._w_skips.append({"instance_id": command.instance_id, "user_id": command.user_id,
                                  "step": command.step, "message": command.message, "reason": command.reason,
                                  "decisions": [d.to_dict() for d in command.decisions], "at": utc(command.at),
                                  "detail": command.detail})
        # Trace: the timeline is a dry-run view; production explains itself by messages and skips.

    def flush(self) -> None:
        """Write everything buffered, one statement per table (executemany)."""
        if self._w_profiles:
            rows = [{"user_id": p.user_id, "doc": _profile_doc(p)} for p in self._w_profiles.values()]
            self._upsert(PROFILES, rows, ["user_id"], ["doc"])
        self._insert(CONSENTS, self._w_consents)
        if self._w_instances:
            rows = [_instance_row(i) for i in self._w_instances.values()]
            self._upsert(INSTANCES, rows, ["instance_id"], ["status", "step", "doc"])
        if self._w_entries:
            self._upsert(ENTRIES, self._w_entries, ["journey_id", "user_id", "key"], ["instance_id", "entered_at"])
        self._insert(TIMERS, list(self._w_timers.values()))
        for chunk in chunks(sorted(self._w_cancel)):
            self.conn.execute(TIMERS.delete().where(TIMERS.c.timer_id.in_(chunk)))
        self._insert(MESSAGES, self._w_messages)
        self._insert(SKIPS, self._w_skips)
        if self._w_status:
            statement = update(MESSAGES).where(MESSAGES.c.message_id == bindparam("b_id")).values(
                status=bindparam("b_status"), status_at=bindparam("b_at"))
            self.conn.execute(statement, self._w_status)

    def _insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.conn.execute(insert(table), rows)

    def _upsert(self, table: Table, rows: list[dict[str, Any]], keys: list[str], columns: list[str]) -> None:
        statement = dialect_insert(self.dialect, table)
        statement = statement.on_conflict_do_update(
            index_elements=keys, set_={c: getattr(statement.excluded, c) for c in columns})
        self.conn.execute(statement, rows)


def _forget_sends_before(state: UserState, since: datetime) -> None:
    """Cached send history only needs the caps' window; older records would only pile up."""
    if state.sends and state.sends[0].at < since:
        state.sends = [s for s in state.sends if s.at >= since]
        state.sends_since = since


def _key(key: str | None) -> str:
    """Entry keys are part of a primary key: None is '', a real key is prefixed so it never is."""
    return "" if key is None else "=" + key


def _stored_profile(doc: dict[str, Any]) -> Profile:
    """A profile read back: it was validated when it came in, so it is not parsed again."""
    return Profile(doc["user_id"], doc.get("timezone"), doc.get("email"), doc.get("phone"), doc.get("push_token"),
                   bool(doc.get("rcs_capable")), doc.get("attributes") or {})


def _profile_doc(profile: Profile) -> dict[str, Any]:
    doc = profile.to_dict()
    doc.pop("consents")
    return doc


def _instance_row(instance: Instance) -> dict[str, Any]:
    return {"instance_id": instance.instance_id, "journey_id": instance.journey_id, "version": instance.version,
            "user_id": instance.user_id, "key": instance.key, "status": instance.status, "step": instance.step,
            "entered_at": utc(instance.entered_at), "doc": instance.to_dict()}


def _message_row(send: Send) -> dict[str, Any]:
    return {"message_id": send.message_id, "instance_id": send.instance_id, "journey_id": send.journey_id,
            "user_id": send.user_id, "step": send.step, "message": send.message, "channel": send.channel,
            "category": send.category, "content": dict(send.content), "cost": send.cost,
            "encoding": send.encoding, "segments": send.segments,
            "decisions": [d.to_dict() for d in send.decisions], "at": utc(send.at), "status": "queued",
            "status_at": None, "dispatch": "pending", "next_attempt_at": utc(send.at), "attempts": 0,
            "provider": None, "provider_id": None, "error": None}
