"""Every interface between the engine (and its host) and I/O, in one place.

A `Store` hands out transactions (`Tx`): the engine does all the reads and writes of one
batch of events, or one sweep of timers, inside one transaction, after one `prefetch` of
the users involved, so the hot path makes no per-event query. A `Tx` is six roles: the
inbox (`InboxTx`), the users' state (`UsersTx`), their recent marks for look-backs and
throttles (`RecentTx`), due timers (`TimersTx`), the targets of the runtime's commands
(`CommandsTx`) and an audience run's chunk (`RunsTx`). The commands (`Send`, `Skip`,
`Schedule`, `Cancel`, `Mark`, `Trace`) become writes in one place, `carry_out` at
the end of this module.

The host asks more of a store, one object per port: the dispatcher drains the `Outbox`, the
HTTP API reads `ReadViews`, deploys keep `Journeys`, audience runs are leased through `Runs`,
erasure and the consent audit trail are `Privacy`, each person's in-app messages and what
they did to them are the `Feed`, tracked links count their hits through `Links`, and workers
sharing a database split its users by `PartitionLeases`. `HostStore` is a `Store` with one
object for each of them. The memory store (`engine.stores.memory`) implements every port, the
SQL store (`engine.stores.sql`) too.
`Clock` (engine.clock) is the port to time.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from channels import ConsentRecord, Profile, SentRecord
from channels.consent import LedgerEntry, SuppressionEntry  # the audit trail's rows
from channels.engagement import Engagement
from channels.profile import RcsCapability
from channels.values import quick_init
from engine.clock import IdSource as IdSource
from engine.events import Event
from engine.runs import AudienceRun
from engine.state import (
    Cancel,
    Fence,
    Instance,
    Lease,
    Mark,
    Outcome,
    Partitioning,
    RecentView,
    Schedule,
    Send,
    Skip,
    TimerRef,
    Trace,
)
from engine.stats import Key, outcome_counts

ERASED = "erased"
"""The reason an erased person's instances end with, and the error of their cancelled messages."""
IN_DOUBT = "interrupted while its provider had it; not retried to avoid a duplicate"
RETRIED = "interrupted while its provider had it; retried with its idempotency key"


@dataclass(frozen=True, slots=True)
class EntryHistory:
    """What the store knows about earlier entries of one user (and key) into one journey: what
    the re-entry rules read (`Runtime.may_reenter`)."""

    active: bool
    last_entered_at: datetime | None


@quick_init
@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A leased message and the recipient's address on its channel (None: the profile has none)."""

    message_id: str
    user_id: str
    channel: str
    category: str
    content: dict[str, Any]
    attempts: int
    address: str | None
    instance_id: str | None = None  # None: a keyword reply, not a journey's message


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """Which messages of every user to list (`ReadViews.find_messages`): each filter given must
    match; `since` included, `until` excluded (the message's time); `before`, the page's start:
    messages older than this (at, message_id), as the previous page ended."""

    journey_id: str | None = None
    step: str | None = None
    channel: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: tuple[datetime, str] | None = None


@dataclass(frozen=True, slots=True)
class JourneyVersion:
    """One version of one journey as the server first loaded it: its YAML and where it came from."""

    journey_id: str
    version: str
    file: str
    source: str
    first_loaded_at: datetime
    templates: Mapping[str, str] = field(default_factory=dict)  # the partials and layouts it uses, by name


@dataclass(frozen=True, slots=True)
class Erasure:
    """What erasing one person removed: the host withdraws `queued` from its backlog."""

    instances: int  # ended as exited (reason erased), then deleted
    queued: int  # accepted events not yet processed, deleted
    messages: int  # messages whose content and provider error were erased
    cancelled: int  # of those, not yet handed to a provider: cancelled, never sent


@dataclass(frozen=True, slots=True)
class LinkHit:
    """One hit of a tracked link (or of an email's open pixel), counted: the message it belongs to,
    where it leads, how many hits the link has had (this one included), and whether it is the
    message's first hit of its kind: the first by a person, or the first by a machine, over all the
    message's links (or its pixel), exact however many hits come at once."""

    message_id: str
    user_id: str
    channel: str
    url: str | None  # None: the open pixel
    hits: int
    first: bool
class Recent(RecentView, Protocol):
    """A user's recent marks, within one transaction (`RecentTx.recent`): the events a `wait_for`
    look-back may take and the passes of throttles, each kept until its `until` and no longer
    (expired marks are deleted in batches as new ones are written). Nothing is read or written
    here unless a loaded journey asks for it (`engine.steps.needs`)."""

    def prefetch(self, user_ids: Collection[str], now: datetime) -> None:
        """Load the unexpired marks of these users in one go (else each user's on first read)."""
        ...

    def add(self, mark: Mark) -> None:
        """Keep `mark` (seen at once by this transaction's reads)."""
        ...


class RecentTx(Protocol):
    """The users' recent marks (look-backs, throttles), within this transaction."""

    @property
    def recent(self) -> Recent: ...


class InboxTx(Protocol):
    """Idempotency and the inbox: event ids remembered, events kept for later and taken in order."""

    def remember_events(self, event_ids: Sequence[str]) -> set[str]:
        """Record idempotency keys; returns those that are new (not seen before, not repeated)."""
        ...

    def queue_events(self, events: Sequence[Event]) -> None:
        """Keep validated, de-duplicated events for later processing, in this order."""
        ...

    def claim_queued(self, limit: int) -> Sequence[Event]:
        """The oldest queued events (not quarantined), removed from the queue as part of this transaction."""
        ...

    def quarantine_queued(self, error: str) -> str | None:
        """Set the oldest queued event aside with `error` (kept for a person to look at, never
        retried); returns its user, None when nothing is queued."""
        ...


class UsersTx(Protocol):
    """The state of the users a batch touches: read after one `prefetch`, changed in place."""

    def prefetch(self, user_ids: Collection[str], since: datetime) -> None:
        """Load what the engine will read for these users (profiles, instances, recent sends)."""
        ...

    def get_profile(self, user_id: str) -> Profile | None: ...

    def put_profile(self, profile: Profile) -> None:
        """Upsert a profile; consent records it has that the store lacks are appended to the ledger;
        its engagement replaces the stored one (kept when the profile's is None)."""
        ...

    def put_engagement(self, user_id: str, engagement: Engagement) -> None:
        """The engagement counts of a stored profile, as the engine keeps them (no profile: nothing)."""
        ...

    def active_instances(self, user_id: str) -> Sequence[Instance]: ...

    def get_instance(self, instance_id: str) -> Instance | None: ...

    def active_instances_of(self, journey_id: str, limit: int) -> Sequence[Instance]:
        """Up to `limit` active instances of a journey (any version): stopping a journey ends them."""
        ...

    def entry_history(self, journey_id: str, user_id: str, key: str | None) -> EntryHistory | None: ...

    def recent_sends(self, user_id: str, since: datetime) -> Sequence[SentRecord]: ...

    def latest_message(self, user_id: str, channel: str) -> str | None: ...

    def set_message_status(self, user_id: str, message_id: str, status: str, at: datetime) -> None:
        """The status of `user_id`'s message `message_id` (no such message of theirs: nothing)."""

    def suppressed_since(self, phone: str) -> datetime | None:
        """Since when a STOP from this E.164 number suppresses it (None: it is not suppressed)."""
        ...

    def record_suppression(self, phone: str, keyword: str, at: datetime, source: str) -> None:
        """A STOP (suppress the number on sms, mms, rcs) or START (lift it) from `phone`: a ledger row."""
        ...


class TimersTx(Protocol):
    """Timers that came due, taken in the order due."""

    def due_timer_users(self, now: datetime, limit: int) -> set[str]:
        """The users of the (up to `limit`) earliest timers due by `now`; nothing is claimed."""
        ...

    def claim_due_timers(self, now: datetime, limit: int) -> Sequence[tuple[str, str]]:
        """(instance_id, timer_id) of timers due by `now`, earliest first, removed from the
        queue as part of this transaction (so a crash before commit leaves them due)."""
        ...


class CommandsTx(RecentTx, Protocol):
    """The targets of the runtime's commands: `carry_out` maps each command to one of these (a
    `Mark` to `recent.add`)."""

    def save_instance(self, instance: Instance) -> None:
        """Insert or update an instance; the first save of an instance is its journey's latest entry."""
        ...

    def add_message(self, send: Send) -> None:
        """A message for the outbox, counted at once in the user's recent sends (caps), with its
        tracked links (`send.links`)."""
        ...

    def add_timer(self, instance_id: str, timer: TimerRef) -> None: ...

    def cancel_timer(self, timer_id: str) -> None: ...

    def add_skip(self, skip: Skip) -> None: ...

    def add_trace(self, trace: Trace) -> None:
        """The timeline is a dry-run view: a durable store may drop traces."""
        ...

    def count(self, counts: Mapping[Key, float]) -> None:
        """Add to the journeys' counters (engine.stats), with this transaction."""
        ...


class RunsTx(Protocol):
    """An audience run's chunk (engine.audience.entry): a chunk of profiles and the run, in one transaction."""

    def profiles_after(self, user_id: str | None, limit: int) -> Sequence[Profile]:
        """Up to `limit` profiles in user_id order after `user_id` (None: from the first), without
        their consent ledgers (the audience reads none): the next chunk of a run."""
        ...

    def lock_run(self, run_id: str) -> AudienceRun | None:
        """The run as committed, held until this transaction ends: one chunk of a run at a time."""
        ...

    def save_run(self, run: AudienceRun) -> None: ...


class Tx(InboxTx, UsersTx, TimersTx, CommandsTx, RecentTx, RunsTx, Protocol):
    """One unit of work. Reads see this transaction's own writes; nothing is kept unless it commits."""


class Store(Protocol):
    """Transactions, and the few questions the host asks outside one."""

    def transaction(self) -> AbstractContextManager[Tx]: ...

    def next_due(self) -> datetime | None:
        """When the earliest pending timer is due, if any."""
        ...

    def queued_users(self) -> dict[str, int]:
        """How many accepted events wait in the inbox for each user."""
        ...

    def close(self) -> None: ...

    def ping(self) -> None:
        """Raise StoreError unless the store answers now (readiness)."""
        ...


class Outbox(Protocol):
    """The dispatcher's side of the stored messages."""

    def claim_outbox(self, now: datetime, limit: int, lease: timedelta, token: str) -> list[OutboxItem]:
        """Up to `limit` due pending messages, earliest first, `leased` to claim `token` until now + lease."""
        ...

    def finish_outbox(self, results: Sequence[Mapping[str, Any]], fence: Fence, sending: Sequence[str] = (),
                      ) -> frozenset[str]:
        """In one transaction, for the messages `fence` still holds: record attempts (keys
        message_id, dispatch, status, attempts, next_attempt_at, provider, provider_id, error, at;
        their claim ends) and mark `sending` the leased ones about to be handed over. Returns those."""
        ...

    def renew_outbox(self, message_ids: Collection[str], fence: Fence) -> frozenset[str]:
        """Extend the lease of those of these messages `fence` still holds to `fence.until`; returns them."""
        ...

    def expire_interrupted(self, now: datetime, retry_channels: Collection[str] = ()) -> int:
        """Leases that ran out: `leased` messages (never handed to a provider) go back to pending;
        `sending` ones (caught mid-call) are retried on `retry_channels` (every provider takes an
        idempotency key), else `unknown`; their claim ends. Returns how many became `unknown`."""
        ...

    def outbox_next_due(self) -> datetime | None: ...

    def release_held(self, error: str, now: datetime) -> int:
        """Pending messages held back with `error` (a send rate's turn) due by `now`, in their order."""
        ...

    def outbox_queued(self) -> dict[str, int]:
        """Messages waiting in the outbox, by channel: `pending` ones, due or not (a retry, quiet
        hours, a send rate's turn). One grouped count, for `/metrics` at scrape time."""
        ...

    def recipients(self, user_ids: Collection[str]) -> dict[str, Profile]:
        """The profiles (with consent ledgers) of these users as committed, for the checks before sending."""
        ...

    def suppressions(self, numbers: Collection[str]) -> dict[str, datetime]:
        """The numbers among these that are suppressed now, with the time of their STOP."""
        ...


class ReadViews(Protocol):
    """What the HTTP API and the webhooks read, outside the engine's transactions."""

    def instances_for_user(self, user_id: str) -> list[Instance]: ...

    def messages_for_user(self, user_id: str, limit: int = 200) -> list[dict[str, Any]]:
        """Newest first: message_id, instance_id, journey_id, user_id, step, message, channel, category,
        content, cost, encoding, segments, decisions, at, locale, status, status_at, dispatch,
        next_attempt_at, attempts, provider, provider_id, error, choice (strategy auto's order and
        reason, else None), and links: its tracked links, each with url (None: the open pixel), hits,
        machine_hits, first_hit_at, last_hit_at."""
        ...

    def skips_for_user(self, user_id: str, limit: int = 200) -> list[dict[str, Any]]:
        """Newest first: instance_id, user_id, step, message, reason, decisions, at, detail."""
        ...

    def find_messages(self, query: MessageQuery, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` messages of any user matching `query`, newest first (by at, then message_id),
        as `messages_for_user` gives them; read through an index whatever the filters."""
        ...

    def message_by_provider_id(self, provider_id: str) -> dict[str, Any] | None:
        """The message a provider knows as `provider_id` (its message_id, user_id, channel, provider)."""
        ...

    def users_by_phone(self, phone: str) -> list[str]:
        """The users whose profile holds this E.164 number, in user_id order (several may share one)."""
        ...

    def step_counts(self, journey_id: str) -> dict[str, dict[str, int]]:
        """Instances per current step and status."""
        ...

    def journey_counts(self, journey_id: str, version: str | None, low: str | None, high: str | None,
                       ) -> list[tuple[str, str, float]]:
        """The journey's counters (engine.stats) summed over every writer and the hours of entry
        from `low` (included) to `high` (excluded): (path, name, value) rows."""
        ...


class Journeys(Protocol):
    """The journeys the server has run: every version (so instances outlive a redeploy) and each
    journey's lifecycle state (so a pause or a stop outlives a restart)."""

    def save_versions(self, versions: Sequence[JourneyVersion]) -> None:
        """Keep versions not seen before; a version seen before keeps its first load time."""
        ...

    def journey_version(self, journey_id: str, version: str) -> JourneyVersion | None: ...

    def journey_versions(self, journey_id: str) -> list[JourneyVersion]:
        """Oldest first."""
        ...

    def journey_ids(self) -> list[str]:
        """Every journey a version was kept of, loaded now or removed since."""
        ...

    def journey_states(self) -> dict[str, str]:
        """Journeys not `active`, with their state."""
        ...

    def set_journey_state(self, journey_id: str, state: str, at: datetime) -> None: ...

    def active_counts(self, journey_id: str) -> dict[str, int]:
        """Active instances of a journey per version."""
        ...

    def cancel_pending(self, journey_id: str, reason: str, at: datetime,
                       instance_ids: Collection[str] | None = None) -> int:
        """Messages of the journey (of these instances only, when given) not yet handed to a
        provider are not sent: `cancelled` with `reason`."""
        ...


class Privacy(Protocol):
    """The person's rights (erasure, access) and the consent audit trail. An erasure keeps only
    the proof of past consent: the ledger rows (under the same user_id, so the proof can be found
    again) and salted hashes of the phone and email, never the addresses in clear."""

    def erase_user(self, user_id: str, at: datetime, end_instances: Callable[[Tx], None]) -> Erasure | None:
        """In one transaction: `end_instances(tx)` (the engine ends the user's active instances,
        timers cancelled; the user is prefetched), then the profile, the instances and the queued
        events are deleted, messages lose their content (pending ones are cancelled) and their tracked
        links (their codes answer nothing), skips their detail; later events for the user start
        afresh. None, and nothing written, when nothing is held under `user_id`."""
        ...

    def consent_ledger(self, user_id: str) -> list[ConsentRecord]:
        """Every consent record held under `user_id` in the order written, those kept as proof after
        an erasure included."""
        ...

    def consent_feed(self, since: datetime | None, after: int, limit: int) -> list[LedgerEntry]:
        """Up to `limit` ledger rows of all users written after position `after` (0: the first), in
        the order written; with `since`, only records whose `at` is at or after it."""
        ...

    def suppressions_for(self, phone: str) -> list[dict[str, Any]]:
        """The suppression list's ledger rows for this number (number, keyword, at, source), oldest first."""
        ...

    def suppression_feed(self, since: datetime | None, after: int, limit: int) -> list[SuppressionEntry]:
        """Up to `limit` rows of the suppression list's ledger written after position `after`, in
        the order written; with `since`, only those at or after it."""
        ...


class Links(Protocol):
    """The tracked links of the messages (written with them, `CommandsTx.add_message`), each hit
    counted as it comes. An erased person's links are gone: their codes answer nothing."""

    def hit(self, code: str, pixel: bool, machine: bool, at: datetime) -> LinkHit | None:
        """Count one hit of the link (`pixel`: of the open pixel) with this code, by a machine or a
        person; None, and nothing counted, for a code no such link has."""
        ...


class PartitionLeases(Protocol):
    """Partition ownership among workers sharing a database (PostgreSQL): `HostStore.partitions`."""

    count: int  # how many partitions the database's users hash into
    partitioning: Partitioning  # how they hash into them (on Citus: the shards)
    worker: str | None  # this process's worker id: set it and the sweeps take only its partitions

    def heartbeat(self, ttl: timedelta, stats: Callable[[Lease], Mapping[str, Any]]) -> Lease:
        """Prove this worker alive for `ttl`, renew its leases, and take free or expired
        partitions up to an even share among the live workers; records `stats(the new lease)`.
        Never gives a partition up, so it may run while the worker is busy with its users."""
        ...

    def give_up(self, count: int) -> frozenset[int]:
        """Give up `count` of this worker's partitions (the highest), for a worker that joined."""
        ...

    def release(self, stats: Mapping[str, Any]) -> None:
        """Leaving: give up every partition now, so that the others take them at once."""
        ...

    def live_workers(self) -> list[dict[str, Any]]:
        """Each live worker: its id, last heartbeat and the stats it reported then."""
        ...

    def queued_in(self, parts: Collection[int]) -> bool: ...  # any event of theirs waits in the inbox

    def queued_users(self, parts: Collection[int]) -> dict[str, int]: ...  # events waiting, per user

    def queued_count(self, parts: Collection[int]) -> int: ...  # events waiting in all, whoever accepted them


FEED_STATES = ("seen", "read", "archived")
"""What a person does to an in-app message in their feed; reading one sees it too."""


class Feed(Protocol):
    """The in-app feed: each person's `in_app` messages (those not cancelled) with what they did to each."""

    def feed_items(self, user_id: str, before: tuple[datetime, str] | None, limit: int,
                   archived: bool = False) -> list[dict[str, Any]]:
        """Newest first, after the (at, message_id) `before` if given: message_id, journey_id, message,
        content, locale, at, seen_at, read_at, archived_at. Archived ones only when `archived`."""
        ...

    def feed_unread(self, user_id: str) -> int:
        """How many of the person's feed are neither read nor archived."""
        ...

    def mark_feed(self, user_id: str, message_ids: Sequence[str] | None, state: str, at: datetime) -> list[str]:
        """`state` (one of FEED_STATES) set at `at` on those of `message_ids` (None: every one) in the
        person's feed that lacked it, `read` setting `seen` too: the ids it changed, oldest first."""
        ...


class Runs(Protocol):
    """Audience runs outside the chunks: created when due or by hand, leased to one worker at a time."""

    def add_run(self, run: AudienceRun) -> bool:
        """Keep a new run; False (and nothing kept) when its journey has one for the same occurrence."""
        ...

    def get_run(self, run_id: str) -> AudienceRun | None: ...

    def runs_of(self, journey_id: str, limit: int = 100) -> list[AudienceRun]:
        """The journey's runs, the latest scheduled first."""
        ...

    def latest_scheduled_run(self, journey_id: str) -> AudienceRun | None:
        """The journey's run (by schedule or at, not by hand) with the latest scheduled time."""
        ...

    def claim_run(self, owner: str, journey_ids: Collection[str], now: datetime, lease: timedelta,
                  ) -> AudienceRun | None:
        """The oldest pending or running run of these journeys that no one else holds (no lease, or
        one that ran out), leased to `owner` until now + lease."""
        ...

    def release_runs(self) -> None:
        """Every lease given up: a single process restarting takes its runs over at once."""
        ...

    def end_runs(self, journey_id: str, status: str, error: str, at: datetime) -> int:
        """The journey's pending and running runs end with `status` and `error`; returns how many."""
        ...


class HostStore(Store, Protocol):
    """Everything `journey serve` needs of a store: transactions, and one object per port (each
    store composes them over the same data, so each changes for its own reason)."""

    @property
    def outbox(self) -> Outbox: ...

    @property
    def views(self) -> ReadViews: ...

    @property
    def journeys(self) -> Journeys: ...

    @property
    def runs(self) -> Runs: ...

    @property
    def privacy(self) -> Privacy: ...

    @property
    def feed(self) -> Feed: ...

    @property
    def links(self) -> Links: ...

    @property
    def partitions(self) -> PartitionLeases | None:
        """Partition ownership among the worker processes sharing this store (PostgreSQL); None
        when one process works on every user (memory, SQLite): it owns them all, and no other
        process can hold a lease on its runs or messages."""
        ...

    @property
    def location(self) -> str:
        """Where the data is, for logs: the database URL without its password; `memory`."""
        ...


class CapabilityLookup(Protocol):
    """Asks a provider whether a profile's phone takes RCS when its cached answer is missing or
    stale; the host implements it with the providers that can tell (engine.host.capability)."""

    def lookup(self, profile: Profile, now: datetime) -> RcsCapability | None:
        """A fresh answer, or None: the cached one holds, or no provider can tell now."""
        ...


def carry_out(tx: CommandsTx, outcome: Outcome, before: Instance | None = None) -> None:
    """The one place the runtime's commands become store writes: the instance's new state first,
    then each command in order, through the `Tx` method it maps to, then what it adds to the
    journey's counters (`before`: the instance as it was; None, it entered now)."""
    if outcome.instance is not None:
        tx.save_instance(outcome.instance)
        if outcome.instance is not before:
            tx.count(outcome_counts(before, outcome))
    for command in outcome.commands:  # a plain chain, most frequent first: this runs for every command
        if isinstance(command, Send):
            tx.add_message(command)
        elif isinstance(command, Schedule):
            tx.add_timer(command.instance_id, command.timer)
        elif isinstance(command, Cancel):
            tx.cancel_timer(command.timer_id)
        elif isinstance(command, Skip):
            tx.add_skip(command)
        elif isinstance(command, Mark):
            tx.recent.add(command)
        else:
            tx.add_trace(command)
