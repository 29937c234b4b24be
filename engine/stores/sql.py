"""The durable store: SQLite by default (WAL), PostgreSQL for many workers. The only SQLModel user.

One `SqlTx` is one database transaction. `prefetch` loads, in a handful of queries, what
the engine will read for a batch of users; every write is kept in memory and flushed with
executemany when the block ends, so a batch of 500 events costs a few round trips, not
thousands. Timers are rows with an indexed due time, claimed in batches (on PostgreSQL
with FOR UPDATE SKIP LOCKED, so several workers can sweep at once).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, Connection, Index, Table, bindparam, event, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine as SaEngine
from sqlalchemy.types import JSON
from sqlmodel import Field, SQLModel, create_engine

from channels import ConsentRecord, Profile, SentRecord
from engine.runtime import EntryHistory
from engine.state import Cancel, Instance, Outcome, Schedule, Send, Skip, Trace

SCHEMA_VERSION = 1
_CHUNK = 900


class StoreError(RuntimeError):
    """The database is unusable (newer schema, unreachable); the message says which."""


class ProfileRow(SQLModel, table=True):
    __tablename__ = "profiles"
    user_id: str = Field(primary_key=True)
    doc: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class ConsentRow(SQLModel, table=True):
    __tablename__ = "consents"
    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(index=True)
    seq: int
    channel: str
    category: str
    granted: bool
    source: str | None = None
    at: datetime


class EventIdRow(SQLModel, table=True):
    __tablename__ = "event_ids"
    id: str = Field(primary_key=True)


class InstanceRow(SQLModel, table=True):
    __tablename__ = "instances"
    __table_args__ = (Index("ix_instances_user_status", "user_id", "status"),
                      Index("ix_instances_journey_status", "journey_id", "status"))
    instance_id: str = Field(primary_key=True)
    journey_id: str
    version: str
    user_id: str
    key: str | None = None
    status: str
    step: str | None = None
    entered_at: datetime
    doc: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class EntryRow(SQLModel, table=True):
    __tablename__ = "entries"
    journey_id: str = Field(primary_key=True)
    user_id: str = Field(primary_key=True, index=True)
    key: str = Field(primary_key=True)
    instance_id: str
    entered_at: datetime


class TimerRow(SQLModel, table=True):
    __tablename__ = "timers"
    timer_id: str = Field(primary_key=True)
    instance_id: str
    due: datetime = Field(index=True)


class MessageRow(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_user_at", "user_id", "at"),
                      Index("ix_messages_dispatch", "dispatch", "next_attempt_at"))
    message_id: str = Field(primary_key=True)
    instance_id: str | None = None
    journey_id: str | None = None
    user_id: str
    step: str | None = None
    message: str
    channel: str
    category: str
    content: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    cost: float
    encoding: str | None = None
    segments: int | None = None
    decisions: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    at: datetime
    status: str = "queued"
    status_at: datetime | None = None
    dispatch: str = "pending"
    next_attempt_at: datetime | None = None
    attempts: int = 0
    provider: str | None = None
    provider_id: str | None = None
    error: str | None = None


class SkipRow(SQLModel, table=True):
    __tablename__ = "skips"
    id: int | None = Field(default=None, primary_key=True)
    instance_id: str
    user_id: str = Field(index=True)
    step: str
    message: str
    reason: str
    decisions: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    at: datetime
    detail: str | None = None


class MetaRow(SQLModel, table=True):
    __tablename__ = "meta"
    key: str = Field(primary_key=True)
    value: str

PROFILES: Table = ProfileRow.__table__  # type: ignore[attr-defined]
CONSENTS: Table = ConsentRow.__table__  # type: ignore[attr-defined]
EVENT_IDS: Table = EventIdRow.__table__  # type: ignore[attr-defined]
INSTANCES: Table = InstanceRow.__table__  # type: ignore[attr-defined]
ENTRIES: Table = EntryRow.__table__  # type: ignore[attr-defined]
TIMERS: Table = TimerRow.__table__  # type: ignore[attr-defined]
MESSAGES: Table = MessageRow.__table__  # type: ignore[attr-defined]
SKIPS: Table = SkipRow.__table__  # type: ignore[attr-defined]
META: Table = MetaRow.__table__  # type: ignore[attr-defined]


def utc(at: datetime) -> datetime:
    """Stored form: aware UTC (SQLModel's column type insists on an offset)."""
    return at.astimezone(UTC)


def aware(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


class SqlStore:
    """A database URL in, transactions out. Creates the schema on first use."""

    def __init__(self, url: str, echo: bool = False) -> None:
        self.url = url
        self.dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
        self.engine: SaEngine = _make_engine(url, self.dialect, echo)
        self._create_schema()

    def _create_schema(self) -> None:
        SQLModel.metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            row = conn.execute(select(META.c.value).where(META.c.key == "schema_version")).first()
            if row is None:
                conn.execute(insert(META).values(key="schema_version", value=str(SCHEMA_VERSION)))
            elif int(row[0]) > SCHEMA_VERSION:
                raise StoreError(f"{self.url}: schema version {row[0]} is newer than this journey-engine "
                                 f"({SCHEMA_VERSION}); upgrade journey-engine")

    @contextmanager
    def transaction(self) -> Iterator[SqlTx]:
        with self.engine.begin() as conn:
            tx = SqlTx(conn, self.dialect)
            yield tx
            tx.flush()

    def next_due(self) -> datetime | None:
        with self.engine.connect() as conn:
            due = conn.execute(select(func.min(TIMERS.c.due))).scalar()
        return aware(due) if due is not None else None

    def close(self) -> None:
        self.engine.dispose()

    # --- outbox: the dispatcher's side of the messages table ----------------------------

    def claim_outbox(self, now: datetime, limit: int, lease: timedelta) -> list[OutboxItem]:
        """Pending messages due for an attempt, leased to this caller until now + lease."""
        query = (select(MESSAGES.c.message_id, MESSAGES.c.user_id, MESSAGES.c.channel, MESSAGES.c.category,
                        MESSAGES.c.content, MESSAGES.c.attempts, PROFILES.c.doc)
                 .select_from(MESSAGES.outerjoin(PROFILES, PROFILES.c.user_id == MESSAGES.c.user_id))
                 .where(MESSAGES.c.dispatch == "pending", MESSAGES.c.next_attempt_at <= utc(now))
                 .order_by(MESSAGES.c.next_attempt_at).limit(limit))
        if self.dialect == "postgresql":
            query = query.with_for_update(of=MESSAGES, skip_locked=True)
        with self.engine.begin() as conn:
            items = [OutboxItem(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in conn.execute(query)]
            for chunk in _chunks([i.message_id for i in items]):
                conn.execute(update(MESSAGES).where(MESSAGES.c.message_id.in_(chunk))
                             .values(dispatch="sending", next_attempt_at=utc(now + lease)))
        return items

    def finish_outbox(self, results: Sequence[dict[str, Any]]) -> None:
        """Record attempts: keys message_id, dispatch, status, attempts, next_attempt_at, provider,
        provider_id, error, at."""
        if not results:
            return
        rows = [{f"b_{k}": (utc(v) if isinstance(v, datetime) else v) for k, v in r.items()} for r in results]
        statement = update(MESSAGES).where(MESSAGES.c.message_id == bindparam("b_message_id")).values(
            dispatch=bindparam("b_dispatch"), status=bindparam("b_status"), status_at=bindparam("b_at"),
            attempts=bindparam("b_attempts"), next_attempt_at=bindparam("b_next_attempt_at"),
            provider=bindparam("b_provider"), provider_id=bindparam("b_provider_id"), error=bindparam("b_error"))
        with self.engine.begin() as conn:
            conn.execute(statement, rows)

    def expire_interrupted(self, now: datetime) -> int:
        """Messages whose send was interrupted (lease ran out mid-attempt): never sent twice, so
        they are marked failed rather than retried."""
        with self.engine.begin() as conn:
            result = conn.execute(update(MESSAGES).where(MESSAGES.c.dispatch == "sending",
                                                         MESSAGES.c.next_attempt_at <= utc(now))
                                  .values(dispatch="failed", status="unknown", status_at=utc(now),
                                          error="interrupted while sending; not retried to avoid a duplicate"))
        return int(result.rowcount or 0)

    def outbox_next_due(self) -> datetime | None:
        with self.engine.connect() as conn:
            due = conn.execute(select(func.min(MESSAGES.c.next_attempt_at))
                               .where(MESSAGES.c.dispatch == "pending")).scalar()
        return aware(due) if due is not None else None

    # --- reads for the HTTP API ---------------------------------------------------------

    def instances_for_user(self, user_id: str) -> list[Instance]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(INSTANCES.c.doc).where(INSTANCES.c.user_id == user_id)
                                .order_by(INSTANCES.c.entered_at))
            return [Instance.from_dict(doc) for (doc,) in rows]

    def messages_for_user(self, user_id: str, limit: int = 200) -> list[dict[str, Any]]:
        columns = [c for c in MESSAGES.c if c.name not in ("next_attempt_at",)]
        with self.engine.connect() as conn:
            rows = conn.execute(select(*columns).where(MESSAGES.c.user_id == user_id)
                                .order_by(MESSAGES.c.at.desc()).limit(limit)).mappings()
            return [dict(r) for r in rows]

    def skips_for_user(self, user_id: str, limit: int = 200) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(SKIPS).where(SKIPS.c.user_id == user_id)
                                .order_by(SKIPS.c.at.desc()).limit(limit)).mappings()
            return [dict(r) for r in rows]

    def step_counts(self, journey_id: str) -> dict[str, dict[str, int]]:
        """Instances per current step and status, for the journeys API."""
        query = (select(INSTANCES.c.step, INSTANCES.c.status, func.count())
                 .where(INSTANCES.c.journey_id == journey_id).group_by(INSTANCES.c.step, INSTANCES.c.status))
        counts: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for step, status, count in conn.execute(query):
                counts.setdefault(step or "(none)", {})[status] = int(count)
        return counts


@dataclass(frozen=True, slots=True)
class OutboxItem:
    message_id: str
    user_id: str
    channel: str
    category: str
    content: dict[str, Any]
    attempts: int
    profile: dict[str, Any] | None


def _make_engine(url: str, dialect: str, echo: bool) -> SaEngine:
    if dialect == "sqlite":
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True)


class SqlTx:
    """One transaction: caches filled by prefetch, writes buffered until flush."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect
        self._loaded: set[str] = set()
        self._profiles: dict[str, Profile | None] = {}
        self._consent_count: dict[str, int] = {}
        self._active: dict[str, dict[str, Instance]] = {}
        self._instances: dict[str, Instance] = {}
        self._entries: dict[tuple[str, str, str], tuple[str, datetime]] = {}
        self._sends: dict[str, list[SentRecord]] = {}
        self._since: datetime | None = None
        self._latest: dict[tuple[str, str], str | None] = {}
        self._w_instances: dict[str, Instance] = {}
        self._w_entries: dict[tuple[str, str, str], tuple[str, datetime]] = {}
        self._w_profiles: dict[str, Profile] = {}
        self._w_consents: list[dict[str, Any]] = []
        self._w_timers: dict[str, dict[str, Any]] = {}
        self._w_cancel: set[str] = set()
        self._w_messages: list[dict[str, Any]] = []
        self._w_status: list[dict[str, Any]] = []
        self._w_skips: list[dict[str, Any]] = []

    # --- reads ----------------------------------------------------------------------------

    def prefetch(self, user_ids: Collection[str], since: datetime) -> None:
        missing = [u for u in user_ids if u not in self._loaded]
        if self._since is None or since < self._since:
            self._since = since
        if not missing:
            return
        self._loaded.update(missing)
        for user in missing:
            self._profiles.setdefault(user, None)
            self._active.setdefault(user, {})
            self._sends.setdefault(user, [])
        for chunk in _chunks(missing):
            self._load_profiles(chunk)
            self._load_instances(chunk)
            self._load_entries(chunk)
            self._load_sends(chunk, since)

    def _load_profiles(self, users: Sequence[str]) -> None:
        for user_id, doc in self.conn.execute(select(PROFILES.c.user_id, PROFILES.c.doc)
                                              .where(PROFILES.c.user_id.in_(users))):
            self._profiles[user_id] = _stored_profile(doc)
        rows = self.conn.execute(select(CONSENTS).where(CONSENTS.c.user_id.in_(users))
                                 .order_by(CONSENTS.c.user_id, CONSENTS.c.seq)).mappings()
        ledgers: dict[str, list[ConsentRecord]] = {}
        for r in rows:
            ledgers.setdefault(r["user_id"], []).append(
                ConsentRecord(r["channel"], r["category"], r["granted"], r["source"], aware(r["at"])))
        for user_id, records in ledgers.items():
            profile = self._profiles.get(user_id) or Profile(user_id)
            self._profiles[user_id] = profile.with_consents(records)
            self._consent_count[user_id] = len(records)

    def _load_instances(self, users: Sequence[str]) -> None:
        query = select(INSTANCES.c.doc).where(INSTANCES.c.user_id.in_(users),
                                              INSTANCES.c.status == "active")
        for (doc,) in self.conn.execute(query):
            instance = Instance.from_dict(doc)
            self._instances[instance.instance_id] = instance
            self._active[instance.user_id][instance.instance_id] = instance

    def _load_entries(self, users: Sequence[str]) -> None:
        query = select(ENTRIES.c.journey_id, ENTRIES.c.user_id, ENTRIES.c.key, ENTRIES.c.instance_id,
                       ENTRIES.c.entered_at).where(ENTRIES.c.user_id.in_(users))
        for journey_id, user_id, key, instance_id, entered_at in self.conn.execute(query):
            self._entries[(journey_id, user_id, key)] = (instance_id, aware(entered_at))

    def _load_sends(self, users: Sequence[str], since: datetime) -> None:
        query = (select(MESSAGES.c.user_id, MESSAGES.c.channel, MESSAGES.c.category, MESSAGES.c.at,
                        MESSAGES.c.message_id)
                 .where(MESSAGES.c.user_id.in_(users), MESSAGES.c.at >= utc(since))
                 .order_by(MESSAGES.c.at))
        for user_id, channel, category, at, message_id in self.conn.execute(query):
            self._sends[user_id].append(SentRecord(channel, category, aware(at)))
            self._latest[(user_id, channel)] = message_id

    def _ensure(self, user_id: str) -> None:
        if user_id not in self._loaded:
            self.prefetch([user_id], self._since or datetime(1970, 1, 1, tzinfo=UTC))

    def remember_events(self, event_ids: Sequence[str]) -> set[str]:
        unique = list(dict.fromkeys(event_ids))
        new: set[str] = set()
        for chunk in _chunks(unique):
            rows = [{"id": i} for i in chunk]
            statement = _dialect_insert(self.dialect, EVENT_IDS).values(rows).on_conflict_do_nothing()
            new.update(r[0] for r in self.conn.execute(statement.returning(EVENT_IDS.c.id)))
        return new

    def get_profile(self, user_id: str) -> Profile | None:
        self._ensure(user_id)
        return self._profiles.get(user_id)

    def active_instances(self, user_id: str) -> Sequence[Instance]:
        self._ensure(user_id)
        return list(self._active[user_id].values())

    def get_instance(self, instance_id: str) -> Instance | None:
        if instance_id not in self._instances:
            row = self.conn.execute(select(INSTANCES.c.doc).where(INSTANCES.c.instance_id == instance_id)).first()
            if row is None:
                return None
            self._instances[instance_id] = Instance.from_dict(row[0])
        return self._instances[instance_id]

    def load_instances(self, instance_ids: Sequence[str]) -> None:
        """Batch form of get_instance, for a timer sweep."""
        wanted = [i for i in instance_ids if i not in self._instances]
        for chunk in _chunks(wanted):
            query = select(INSTANCES.c.doc).where(INSTANCES.c.instance_id.in_(chunk))
            for (doc,) in self.conn.execute(query):
                instance = Instance.from_dict(doc)
                self._instances[instance.instance_id] = instance

    def entry_history(self, journey_id: str, user_id: str, key: str | None) -> EntryHistory | None:
        self._ensure(user_id)
        last = self._entries.get((journey_id, user_id, _key(key)))
        if last is None:
            return None
        return EntryHistory(last[0] in self._active[user_id], last[1])

    def recent_sends(self, user_id: str, since: datetime) -> Sequence[SentRecord]:
        self._ensure(user_id)
        return [s for s in self._sends[user_id] if s.at >= since]

    def latest_message(self, user_id: str, channel: str) -> str | None:
        if (user_id, channel) not in self._latest:
            row = self.conn.execute(select(MESSAGES.c.message_id).where(
                MESSAGES.c.user_id == user_id, MESSAGES.c.channel == channel)
                .order_by(MESSAGES.c.at.desc()).limit(1)).first()
            self._latest[(user_id, channel)] = row[0] if row else None
        return self._latest[(user_id, channel)]

    def claim_due_timers(self, now: datetime, limit: int) -> Sequence[tuple[str, str]]:
        query = select(TIMERS.c.instance_id, TIMERS.c.timer_id).where(TIMERS.c.due <= utc(now)) \
            .order_by(TIMERS.c.due).limit(limit)
        if self.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        due = [(str(i), str(t)) for i, t in self.conn.execute(query)]
        for chunk in _chunks([t for _, t in due]):
            self.conn.execute(TIMERS.delete().where(TIMERS.c.timer_id.in_(chunk)))
        self.load_instances([i for i, _ in due])
        return due

    # --- writes ---------------------------------------------------------------------------

    def put_profile(self, profile: Profile) -> None:
        self._ensure(profile.user_id)
        stored = self._consent_count.get(profile.user_id, 0)
        for seq, record in enumerate(profile.consents[stored:], stored):
            self._w_consents.append({"user_id": profile.user_id, "seq": seq, "channel": record.channel,
                                     "category": record.category, "granted": record.granted,
                                     "source": record.source, "at": utc(record.at)})
        self._consent_count[profile.user_id] = len(profile.consents)
        self._profiles[profile.user_id] = profile
        self._w_profiles[profile.user_id] = profile

    def set_message_status(self, message_id: str, status: str, at: datetime) -> None:
        self._w_status.append({"b_id": message_id, "b_status": status, "b_at": utc(at)})

    def apply(self, outcome: Outcome) -> None:
        if outcome.instance is not None:
            self._save(outcome.instance)
        for command in outcome.commands:
            self._carry_out(command)

    def _save(self, instance: Instance) -> None:
        self._ensure(instance.user_id)
        is_new = instance.instance_id not in self._instances
        self._instances[instance.instance_id] = instance
        self._w_instances[instance.instance_id] = instance
        if is_new:
            entry = (instance.journey_id, instance.user_id, _key(instance.key))
            self._entries[entry] = self._w_entries[entry] = (instance.instance_id, instance.entered_at)
        if instance.active:
            self._active[instance.user_id][instance.instance_id] = instance
        else:
            self._active[instance.user_id].pop(instance.instance_id, None)

    def _carry_out(self, command: object) -> None:
        if isinstance(command, Send):
            self._w_messages.append(_message_row(command))
            self._latest[(command.user_id, command.channel)] = command.message_id
            self._ensure(command.user_id)
            self._sends[command.user_id].append(SentRecord(command.channel, command.category, command.at))
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
        elif isinstance(command, Trace):
            pass  # the timeline is a dry-run view; production explains itself through messages and skips

    def flush(self) -> None:
        """Write everything buffered, a statement per table (executemany)."""
        self._flush_profiles()
        if self._w_instances:
            rows = [_instance_row(i) for i in self._w_instances.values()]
            self._upsert(INSTANCES, rows, ["instance_id"], ["status", "step", "doc"])
        if self._w_entries:
            rows = [{"journey_id": j, "user_id": u, "key": k, "instance_id": i, "entered_at": utc(at)}
                    for (j, u, k), (i, at) in self._w_entries.items()]
            self._upsert(ENTRIES, rows, ["journey_id", "user_id", "key"], ["instance_id", "entered_at"])
        self._insert(TIMERS, list(self._w_timers.values()))
        for chunk in _chunks(sorted(self._w_cancel)):
            self.conn.execute(TIMERS.delete().where(TIMERS.c.timer_id.in_(chunk)))
        self._insert(MESSAGES, self._w_messages)
        self._insert(SKIPS, self._w_skips)
        if self._w_status:
            table = MESSAGES
            statement = update(table).where(table.c.message_id == bindparam("b_id")).values(
                status=bindparam("b_status"), status_at=bindparam("b_at"))
            self.conn.execute(statement, self._w_status)

    def _flush_profiles(self) -> None:
        if self._w_profiles:
            rows = [{"user_id": p.user_id, "doc": _profile_doc(p)} for p in self._w_profiles.values()]
            self._upsert(PROFILES, rows, ["user_id"], ["doc"])
        self._insert(CONSENTS, self._w_consents)

    def _insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.conn.execute(insert(table), rows)

    def _upsert(self, table: Table, rows: list[dict[str, Any]], keys: list[str], columns: list[str]) -> None:
        statement = _dialect_insert(self.dialect, table)
        statement = statement.on_conflict_do_update(
            index_elements=keys, set_={c: getattr(statement.excluded, c) for c in columns})
        self.conn.execute(statement, rows)


def _dialect_insert(dialect: str, table: Table) -> Any:
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)


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
