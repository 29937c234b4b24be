"""The database schema (SQLModel tables) and the value conversions both SQL modules share.

Times are stored as aware UTC; JSON documents (profiles, instances, message content and
decisions) as JSON columns. `meta.schema_version` lets later versions migrate.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Identity, Index, Integer, Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import JSON
from sqlmodel import Field, SQLModel

SCHEMA_VERSION = 22
# 2: entries are read from instances; the entries table is no longer kept.
# 3: partial outbox indexes; instance indexes without status (see `RETIRED_INDEXES`).
# 4: profiles.phone, indexed, copied from the profile document.
# 5: the inbox of events accepted for processing later.
# 6: journey versions (their source) and journey states (paused, stopped).
# 7: the phone suppression list: its ledger and the numbers suppressed now.
# 8: the outbox's `leased` state (claimed, not yet handed to a provider), with its partial index.
# 9: erasures (engine/stores/sql/privacy.py); the consent rows an erasure covers are no longer loaded.
# 10: audience runs (engine/stores/sql/runs.py).
# 11: partitions: timers carry their user and partition, the inbox its partition; partition leases and workers.
# 12: messages.claim: the token of the dispatcher's claim that holds a leased or sending message (fenced writes).
# 13: recent: each user's marks for look-backs and throttles, kept until they expire (engine/stores/sql/recent.py).
# 14: links: the tracked links (and open pixels) of messages, with their hits (engine/stores/sql/links.py).
#     A new table only, made by `create_all`: no step in `migrate.py`, so a database at 12 or 13 gets it alike.
# 15: messages.locale: the variant of the message a send was rendered from (`fr`; null: the default content).
# 16: journey_versions.templates: the partials and layouts a version uses, kept with its YAML.
# 17: feed_states: what each person did to the in-app messages of their feed (seen, read, archived); a new
#     table only, made by `create_all`.
# 18: profiles.engagement (the engine's counts per channel) and messages.choice (strategy auto's order and reason).
# 19: 15 to 17 landed after 18: a database version 18 made gets messages.locale and journey_versions.templates
#     then (feed_states, a new table, comes with `create_all`); each is added only where it is missing.
# 20: journey_counters (engine/stores/sql/counters.py), messages.tally (where a message's counters are) and
#     messages.engaged (the engagement counted for it); a database from before starts counting then: what
#     happened earlier is not in the stats. Messages are indexed by time, and by journey and time, for
#     GET /v1/messages without a user.
# 21: every per-user table's primary key starts with `user_id` (Citus distributes them by it and wants the key
#     to hold it): instances, timers, messages, links, feed_states by (user_id, their id); consents, skips,
#     erasures and recent by (user_id, id), their id still numbered by the database (engine/stores/sql/keys.py).
# 22: provider_ids: which user's message a provider's id names, written and read on Citus only (made by
#     `create_all`; an engine of 21 would leave it unwritten, so it refuses the database).
RETIRED_INDEXES = ("ix_messages_dispatch", "ix_messages_provider_id", "ix_instances_user_status",
                   "ix_instances_journey_status")
MESSAGE_KEY = ("user_id", "message_id")  # a message's primary key, in its order (schema 21)
CHUNK = 900


class ProfileRow(SQLModel, table=True):
    __tablename__ = "profiles"
    user_id: str = Field(primary_key=True)
    phone: str | None = Field(default=None, index=True)  # a copy of doc's, so an inbound SMS finds its sender
    doc: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # What the engine counts (channels/engagement.py), apart from the document the API writes, so
    # each event's counts rewrite this column alone: read with the profile, in the same query.
    engagement: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


def numbered() -> Any:
    """A row number the database gives (an identity on PostgreSQL, the rowid on SQLite: keys.py),
    second in a primary key that starts with `user_id`."""
    return Field(default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), Identity(),
                                                primary_key=True))


class ConsentRow(SQLModel, table=True):
    __tablename__ = "consents"
    user_id: str = Field(primary_key=True, index=True)
    id: int | None = numbered()
    seq: int
    channel: str
    category: str
    granted: bool
    source: str | None = None
    at: datetime


class EventIdRow(SQLModel, table=True):
    __tablename__ = "event_ids"
    id: str = Field(primary_key=True)


class ProviderIdRow(SQLModel, table=True):
    """On Citus, whose message a provider's id names (a receipt names only that): a table local to
    the coordinator, as the inbox is, so a webhook finds the user here and then the message in the
    user's shard, each read routed. Written when an attempt is recorded; unused elsewhere, where
    the messages' own partial index on provider_id serves."""

    __tablename__ = "provider_ids"
    provider_id: str = Field(primary_key=True)
    user_id: str
    message_id: str


def _partial(name: str, column: str, where: str) -> Index:
    return Index(name, column, sqlite_where=text(where), postgresql_where=text(where))


class InstanceRow(SQLModel, table=True):
    __tablename__ = "instances"
    # No status in these indexes: an instance changing status then rewrites no index entry.
    __table_args__ = (Index("ix_instances_user", "user_id"), Index("ix_instances_journey", "journey_id"))
    user_id: str = Field(primary_key=True)
    instance_id: str = Field(primary_key=True)
    journey_id: str
    version: str
    key: str | None = None
    status: str
    step: str | None = None
    entered_at: datetime
    doc: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class TimerRow(SQLModel, table=True):
    __tablename__ = "timers"
    user_id: str = Field(default="", primary_key=True)  # the instance's user: the distribution key (Citus)
    timer_id: str = Field(primary_key=True)
    instance_id: str
    due: datetime = Field(index=True)
    part: int = 0  # the user's partition: only its owner fires the timer


class MessageRow(SQLModel, table=True):
    __tablename__ = "messages"
    # The outbox indexes are partial: they hold only messages in flight, not every message ever
    # sent, so claiming stays as fast at ten million messages as at ten.
    __table_args__ = (Index("ix_messages_user_at", "user_id", "at"),
                      Index("ix_messages_at", "at", "message_id"),  # every user's, newest first (GET /v1/messages)
                      Index("ix_messages_journey_at", "journey_id", "at", "message_id"),
                      _partial("ix_messages_pending", "next_attempt_at", "dispatch = 'pending'"),
                      _partial("ix_messages_sending", "next_attempt_at", "dispatch = 'sending'"),
                      _partial("ix_messages_leased", "next_attempt_at", "dispatch = 'leased'"),
                      _partial("ix_messages_provider", "provider_id", "provider_id IS NOT NULL"))
    user_id: str = Field(primary_key=True)
    message_id: str = Field(primary_key=True)
    instance_id: str | None = None
    journey_id: str | None = None
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
    locale: str | None = None  # the message's variant it was rendered from; null: its default content
    status: str = "queued"
    status_at: datetime | None = None
    dispatch: str = "pending"
    next_attempt_at: datetime | None = None
    attempts: int = 0
    provider: str | None = None
    provider_id: str | None = None
    error: str | None = None
    claim: str | None = None  # the holder's token while leased or sending (engine.ports.Fence)
    choice: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))  # strategy auto's
    tally: str | None = None  # where its counters are: version, hour of entry, branches (engine.stats)
    engaged: str | None = None  # the kinds of engagement counted for it, comma-separated (engine.stats.received)


class CounterRow(SQLModel, table=True):
    """One writer's share of one journey counter (engine/stores/sql/counters.py); a read sums them."""

    __tablename__ = "journey_counters"
    journey_id: str = Field(primary_key=True)
    hour: str = Field(primary_key=True)  # of the instances' entry, `2026-01-05T15`: since and until read hours
    version: str = Field(primary_key=True)
    path: str = Field(primary_key=True)  # "": every instance; `<split step>:<branch>`
    name: str = Field(primary_key=True)
    writer: str = Field(primary_key=True)
    value: float = 0.0


class LinkRow(SQLModel, table=True):
    """A tracked link of a message (`url` null: its open pixel): the random code a hit arrives
    with, its place in the message, and the hits counted on it (those by machines apart).
    Written with its message; deleted when its person is erased, so the code answers nothing."""

    __tablename__ = "links"
    # Found by its code alone (a hit): indexed, unique by chance (random codes; Citus allows no unique
    # index without the distribution column).
    __table_args__ = (Index("ix_links_message", "message_id"), Index("ix_links_user", "user_id"),
                      Index("ix_links_code", "code"))
    user_id: str = Field(primary_key=True)
    code: str = Field(primary_key=True)
    message_id: str
    channel: str
    url: str | None = None
    position: int
    at: datetime
    hits: int = 0
    machine_hits: int = 0
    first_hit_at: datetime | None = None
    last_hit_at: datetime | None = None


class SkipRow(SQLModel, table=True):
    __tablename__ = "skips"
    user_id: str = Field(primary_key=True, index=True)
    id: int | None = numbered()
    instance_id: str
    step: str
    message: str
    reason: str
    decisions: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    at: datetime
    detail: str | None = None


class InboxRow(SQLModel, table=True):
    """Events accepted for later processing (`Engine.accept_many`): durable before the caller
    hears back, deleted by the transaction that processes them. A row whose processing failed
    keeps its `error` and stays, so nothing accepted is ever dropped."""

    __tablename__ = "inbox"
    seq: int | None = Field(default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"),
                                                           primary_key=True, autoincrement=True))
    event_id: str | None = None
    user_id: str
    type: str
    at: datetime
    properties: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    error: str | None = None
    part: int = 0  # the user's partition: only its owner processes the event (indexed on PostgreSQL)


class JourneyVersionRow(SQLModel, table=True):
    """Every version of every journey the server has loaded, with its YAML: an instance runs on
    the version it entered, across restarts and redeploys, compiled again from this source."""

    __tablename__ = "journey_versions"
    journey_id: str = Field(primary_key=True)
    version: str = Field(primary_key=True)
    file: str
    source: str
    first_loaded_at: datetime
    templates: dict[str, str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    """The partials and layouts of `templates/` it uses, by name (null: none)."""


class FeedStateRow(SQLModel, table=True):
    """What a person did to one in-app message of their feed; no row: nothing yet. The feed itself
    is their `in_app` messages (engine/stores/sql/feed.py)."""

    __tablename__ = "feed_states"
    user_id: str = Field(primary_key=True, index=True)
    message_id: str = Field(primary_key=True)
    seen_at: datetime | None = None
    read_at: datetime | None = None
    archived_at: datetime | None = None


class JourneyStateRow(SQLModel, table=True):
    """A journey's lifecycle state when it is not `active` (paused, stopped), kept across restarts."""

    __tablename__ = "journey_states"
    journey_id: str = Field(primary_key=True)
    state: str
    at: datetime


class SuppressionRow(SQLModel, table=True):
    """One STOP or START from a phone number: the suppression list's ledger, never rewritten."""

    __tablename__ = "suppressions"
    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(index=True)
    keyword: str
    at: datetime
    source: str


class SuppressedNumberRow(SQLModel, table=True):
    """A number suppressed now (since its first STOP), until a START from it deletes the row."""

    __tablename__ = "suppressed_numbers"
    number: str = Field(primary_key=True)
    since: datetime


class PartitionLeaseRow(SQLModel, table=True):
    """Who owns each partition of the users, until when. A worker renews its leases with every
    heartbeat; a partition whose lease ran out (its worker died) is free for another to take."""

    __tablename__ = "partition_leases"
    part: int = Field(primary_key=True)
    owner: str | None = None
    expires_at: datetime | None = None


class WorkerRow(SQLModel, table=True):
    """The workers on this database, alive while `expires_at` is ahead; `stats` is what each one
    reported at its last heartbeat (partitions owned, lease changes, events and timers)."""

    __tablename__ = "workers"
    worker_id: str = Field(primary_key=True)
    started_at: datetime
    heartbeat_at: datetime
    expires_at: datetime
    stats: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class MetaRow(SQLModel, table=True):
    __tablename__ = "meta"
    key: str = Field(primary_key=True)
    value: str

PROFILES: Table = ProfileRow.__table__  # type: ignore[attr-defined]
CONSENTS: Table = ConsentRow.__table__  # type: ignore[attr-defined]
EVENT_IDS: Table = EventIdRow.__table__  # type: ignore[attr-defined]
INBOX: Table = InboxRow.__table__  # type: ignore[attr-defined]
INSTANCES: Table = InstanceRow.__table__  # type: ignore[attr-defined]
TIMERS: Table = TimerRow.__table__  # type: ignore[attr-defined]
MESSAGES: Table = MessageRow.__table__  # type: ignore[attr-defined]
SKIPS: Table = SkipRow.__table__  # type: ignore[attr-defined]
LINKS: Table = LinkRow.__table__  # type: ignore[attr-defined]
META: Table = MetaRow.__table__  # type: ignore[attr-defined]
JOURNEY_VERSIONS: Table = JourneyVersionRow.__table__  # type: ignore[attr-defined]
FEED_STATES: Table = FeedStateRow.__table__  # type: ignore[attr-defined]
JOURNEY_STATES: Table = JourneyStateRow.__table__  # type: ignore[attr-defined]


def aware(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def dialect_insert(dialect: str, table: Table) -> Any:
    """INSERT with ON CONFLICT support, which both SQLite and PostgreSQL have."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)
