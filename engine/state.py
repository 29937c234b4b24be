"""Running state: journey instances, the commands the runtime asks the host to carry out, and
what processing reports back to the host (Ingested, Committed, Failure).

Everything here is a frozen value with a JSON round-trip, because the server stores it
between stimuli and the tests restore it between every step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

from channels import Choice, Decision, Policy, Profile, SentRecord, recipient_zone
from channels.links import TrackedLink, Tracker
from channels.selection import shown
from channels.values import quick_init
from engine.compiler import CompiledJourney
from engine.events import Event, format_time, parse_time
from engine.expressions import instant
from engine.model import Step
from engine.sandbox import RECIPIENT, Recipient
from engine.shard_hash import shard_index

ACTIVE = "active"
MAX_STEPS_PER_STIMULUS = 10_000
STAY = object()  # a step handler's answer: the instance now waits for a timer or an event
END_OF_STEPS = object()  # a step handler's answer: the end of the step list, so completed
END_STATUSES = ("completed", "exited", "converted", "failed")
PARTITIONS = 256  # users hash into this many partitions; a database records its own count


def user_hash(user_id: str) -> int:
    """A stable unsigned 64-bit hash of a user id: the same in every worker, machine and release
    (unlike `hash`). Partitions and per-user locks are both derived from it."""
    return int.from_bytes(hashlib.blake2b(user_id.encode("utf-8"), digest_size=8).digest(), "big")


def partition_of(user_id: str, partitions: int = PARTITIONS) -> int:
    """The partition a user belongs to: whoever owns it changes the user's state."""
    return user_hash(user_id) % partitions


@dataclass(frozen=True, slots=True)
class Partitioning:
    """How a database's users fall into partitions, as recorded in it: `count` partitions by
    `user_hash`, or on Citus (`shards`) the shards of the user tables themselves, so that a worker
    owning a partition owns every row of one shard group (engine/shard_hash.py)."""

    count: int = PARTITIONS
    shards: bool = False

    def of(self, user_id: str) -> int:
        return shard_index(user_id, self.count) if self.shards else partition_of(user_id, self.count)

    def by_shard(self, user_ids: Sequence[str]) -> list[list[str]]:
        """The users in groups of one shard each, in their order (one group off Citus): a statement
        a group, naming its users, is routed to that shard."""
        if not self.shards:
            return [list(user_ids)] if user_ids else []
        groups: dict[int, list[str]] = {}
        for user_id in user_ids:
            groups.setdefault(self.of(user_id), []).append(user_id)
        return list(groups.values())

    def by_owner(self, keys: Sequence[str], owners: Mapping[str, str]) -> list[tuple[list[str], list[str]]]:
        """Rows by key (message ids) in groups of one shard's users (one group off Citus), each as
        (its users, its keys): a statement a group, filtered by both, is routed to that shard. Keys
        whose user `owners` does not know make a group with no users (found by the key alone)."""
        groups: dict[int | None, tuple[set[str], list[str]]] = {}
        for key in keys:
            user = owners.get(key)
            shard = None if user is None else self.of(user) if self.shards else 0
            users, found = groups.setdefault(shard, (set(), []))
            users.update([user] if user is not None else [])
            found.append(key)
        return [(sorted(users), found) for users, found in groups.values()]


@dataclass(frozen=True, slots=True)
class Lease:
    """What one heartbeat left this worker with: the partitions it owns now, those it took,
    how many it holds above its even share (to give up, `give_up`), and how many workers are
    alive (itself included)."""

    owned: frozenset[int]
    gained: frozenset[int]
    surplus: int
    workers: int


TIMER_REASONS = {"wait": "a wait step", "timeout": "waiting for an event, until its timeout",
                 "escalate": "no engagement yet: the next channel then", "defer": "quiet hours",
                 "digest": "collecting a digest, until its window closes"}
DIGEST_EVENTS = 100  # the events a digest keeps for its templates; `count` counts them all
DEFER_REASON = TIMER_REASONS["defer"]  # a send put off: the only cause is quiet hours


@quick_init
@dataclass(frozen=True, slots=True)
class Fence:
    """A dispatcher's hold on the outbox messages it claimed, checked in the same statement as each
    write to them: the claim's `token` still on the row (the expiry clears it) and its lease not
    run out by `now`, the holder's time. `until`: the new end of the lease of rows marked `sending`
    or renewed. So an expired holder can neither mark a message `sending` nor record it. `users`:
    the claimed messages' users by message id; a write names them beside the ids, so that on Citus
    it is routed to their shard (a message not in it is written by its id alone)."""

    token: str
    now: datetime
    until: datetime
    users: Mapping[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class TimerRef:
    """The one timer an instance may be waiting on; kinds: wait, timeout, escalate, defer."""

    timer_id: str
    due: datetime
    kind: str

    def to_dict(self) -> dict[str, Any]:
        return {"timer_id": self.timer_id, "due": format_time(self.due), "kind": self.kind}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TimerRef:
        return cls(data["timer_id"], parse_time(data["due"], "due"), data["kind"])


@quick_init
@dataclass(frozen=True, slots=True)
class Escalation:
    """An escalate send in progress: the message awaiting engagement and the channels left."""

    remaining: tuple[str, ...]
    after: timedelta
    message_id: str | None = None
    channel: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"remaining": list(self.remaining), "after": self.after.total_seconds(),
                "message_id": self.message_id, "channel": self.channel}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Escalation:
        return cls(tuple(data["remaining"]), timedelta(seconds=data["after"]), data["message_id"], data["channel"])


@dataclass(frozen=True, slots=True)
class Digest:
    """The events a digest step collected (open while its timer runs, closed after): kept in the
    instance, so a digest in progress survives a restart and a redeploy with the instance."""

    step: str
    key: str | None
    opened_at: datetime
    events: tuple[Mapping[str, Any], ...]  # the first DIGEST_EVENTS, as `event` reads in templates
    count: int
    last: Mapping[str, Any]
    closed_at: datetime | None = None

    @classmethod
    def open(cls, step: str, key: str | None, first: Mapping[str, Any], now: datetime) -> Digest:
        return cls(step, key, now, (first,), 1, first)

    def add(self, event: Mapping[str, Any]) -> Digest:
        kept = self.events if len(self.events) >= DIGEST_EVENTS else (*self.events, event)
        return Digest(self.step, self.key, self.opened_at, kept, self.count + 1, event)

    def context(self) -> dict[str, Any]:
        """The `digest` name seen by templates and expressions after a digest step."""
        return {"events": list(self.events), "count": self.count, "first": self.events[0], "last": self.last,
                "key": self.key}

    def summary(self) -> dict[str, Any]:
        """What a message rendered with this digest shows of it (the simulate document)."""
        return {"step": self.step, "count": self.count, "first_at": self.events[0].get("timestamp"),
                "last_at": self.last.get("timestamp")}

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "key": self.key, "opened_at": format_time(self.opened_at),
                "events": [dict(e) for e in self.events], "count": self.count, "last": dict(self.last),
                "closed_at": format_time(self.closed_at) if self.closed_at else None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Digest:
        return cls(data["step"], data["key"], parse_time(data["opened_at"], "opened_at"), tuple(data["events"]),
                   data["count"], data["last"],
                   parse_time(data["closed_at"], "closed_at") if data.get("closed_at") else None)


@quick_init
@dataclass(frozen=True, slots=True)
class Mark:
    """One thing a user did that a later step asks about, kept until `until`: an event a
    `wait_for` with `lookback` may take (`kind` event, `name` its type, `data` the event), or an
    instance that passed a throttle (`kind` pass, `name` its journey, step and key). As a command:
    remember it (engine.ports.carry_out)."""

    user_id: str
    kind: str
    name: str
    at: datetime
    until: datetime
    data: Mapping[str, Any] | None = None


EVENT_MARK, PASS_MARK = "event", "pass"
GOAL_MARK, CONVERTED_MARK = "goal", "converted"
"""An ended instance whose goal may still come (within `goal.within` of entry), and one it came for."""


_HOURS: dict[int, str] = {}


def hour_of(at: datetime) -> str:
    """The hour bucket of an instant, as text that sorts in time order: `2026-01-05T15`. Asked for
    every send and receipt (the counters' key), and a batch's instants share a few hours: the
    hour is found as an integer and its text formatted once."""
    hour = int(at.timestamp() // 3600)
    text = _HOURS.get(hour)
    if text is None:
        if len(_HOURS) >= 4096:  # bounded: start again
            _HOURS.clear()
        text = _HOURS[hour] = datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y-%m-%dT%H")
    return text


def tally_key(version: str, entered_at: datetime, branches: Sequence[str]) -> str:
    """Where an instance's counters are (engine.stats), as one text: version, hour of entry, branches."""
    return "|".join((version, hour_of(entered_at), ",".join(branches)))


class RecentView(Protocol):
    """What the runtime reads of a user's marks (within the transaction: its own writes included)."""

    def marks(self, user_id: str, kind: str, since: datetime) -> Sequence[Mark]:
        """The user's marks of `kind` made at or after `since`, oldest first."""
        ...


class _NoMarks:
    def marks(self, user_id: str, kind: str, since: datetime) -> Sequence[Mark]:
        return ()


NO_MARKS: RecentView = _NoMarks()


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Instance:
    """One person's run through one version of one journey."""

    instance_id: str
    journey_id: str
    version: str
    user_id: str
    key: str | None
    entered_at: datetime
    event: Mapping[str, Any]
    status: str = ACTIVE
    step: str | None = None
    path: tuple[str, ...] = ()
    timer: TimerRef | None = None
    escalation: Escalation | None = None
    seq: int = 0
    reason: str | None = None
    ended_at: datetime | None = None
    digest: Digest | None = None  # the latest digest step's events (open while it collects)
    taken_at: datetime | None = None  # when the latest event a wait_for took arrived: a look-back takes later ones
    expires_at: datetime | None = None  # the current send's expiry (expires, expires_after)
    branches: tuple[str, ...] = ()  # the split branches taken, `<split step>:<branch>`: counted per branch

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    @property
    def tally(self) -> str:
        """What is counted of it is counted under (engine.stats): version, hour of entry, branches.
        Kept on its messages, so a later change of their status is counted where they were sent."""
        return tally_key(self.version, self.entered_at, self.branches)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "instance_id": self.instance_id, "journey_id": self.journey_id, "version": self.version,
            "user_id": self.user_id, "key": self.key, "entered_at": format_time(self.entered_at),
            "event": dict(self.event), "status": self.status, "step": self.step, "path": list(self.path),
            "timer": self.timer.to_dict() if self.timer else None,
            "escalation": self.escalation.to_dict() if self.escalation else None,
            "seq": self.seq, "reason": self.reason,
            "ended_at": format_time(self.ended_at) if self.ended_at else None,
        }
        if self.digest is not None or self.taken_at is not None or self.expires_at is not None:
            data.update(_step_state(self))  # only when used: the documents of other instances stay as they were
        if self.branches:
            data["branches"] = list(self.branches)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Instance:
        return cls(
            instance_id=data["instance_id"], journey_id=data["journey_id"], version=data["version"],
            user_id=data["user_id"], key=data["key"], entered_at=parse_time(data["entered_at"], "entered_at"),
            event=data["event"], status=data["status"], step=data["step"], path=tuple(data["path"]),
            timer=TimerRef.from_dict(data["timer"]) if data["timer"] else None,
            escalation=Escalation.from_dict(data["escalation"]) if data["escalation"] else None,
            seq=data["seq"], reason=data["reason"],
            ended_at=parse_time(data["ended_at"], "ended_at") if data["ended_at"] else None,
            digest=Digest.from_dict(data["digest"]) if data.get("digest") else None,
            taken_at=parse_time(data["taken_at"], "taken_at") if data.get("taken_at") else None,
            expires_at=parse_time(data["expires_at"], "expires_at") if data.get("expires_at") else None,
            branches=tuple(data.get("branches") or ()),
        )


def _step_state(instance: Instance) -> dict[str, Any]:
    return {"digest": instance.digest.to_dict() if instance.digest else None,
            "taken_at": format_time(instance.taken_at) if instance.taken_at else None,
            "expires_at": format_time(instance.expires_at) if instance.expires_at else None}


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    """Command: deliver one rendered message on one channel."""

    message_id: str
    instance_id: str | None
    journey_id: str | None
    user_id: str
    step: str | None
    message: str
    channel: str
    category: str
    content: Mapping[str, Any]
    cost: float
    encoding: str | None
    segments: int | None
    decisions: tuple[Decision, ...]
    at: datetime
    choice: Choice | None = None  # strategy auto: the order chosen and why
    locale: str | None = None  # the variant of the message it was rendered from (`fr`); None: the default content
    links: tuple[TrackedLink, ...] = ()  # its tracked links and open pixel, stored with it (policy `links`)
    digest: Mapping[str, Any] | None = None  # the digest it was rendered with (`Digest.summary`)

    def to_dict(self) -> dict[str, Any]:
        """A message as the simulate document shows it (docs/cli.md)."""
        data = {
            "user_id": self.user_id, "at": format_time(self.at), "step": self.step, "channel": self.channel,
            "message": self.message, "locale": self.locale, "content": dict(self.content), "encoding": self.encoding,
            "segments": self.segments, "cost": self.cost, "decisions": shown(self.decisions, self.choice),
        }
        if self.digest is not None:
            data["digest"] = dict(self.digest)
        if self.choice is not None:
            data["choice"] = self.choice.to_dict()
        return data


@quick_init
@dataclass(frozen=True, slots=True)
class Skip:
    """Record: a send step that sent nothing, with the decisions that explain why."""

    instance_id: str
    user_id: str
    step: str
    message: str
    reason: str
    decisions: tuple[Decision, ...]
    at: datetime
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {"user_id": self.user_id, "at": format_time(self.at), "step": self.step, "message": self.message,
                "reason": self.reason, "decisions": [d.to_dict() for d in self.decisions]}
        if self.detail:
            data["detail"] = self.detail
        return data


@quick_init
@dataclass(frozen=True, slots=True)
class Schedule:
    """Command: fire `timer` for `instance_id` at its due time; for a `defer` timer, `message` is
    the send it puts off (quiet hours), decided again then: the host logs that decision."""

    instance_id: str
    user_id: str
    timer: TimerRef
    message: str | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class Cancel:
    """Command: the timer will not be needed (the instance moved on or ended)."""

    timer_id: str


@dataclass(frozen=True, slots=True)
class Trace:
    """Record: one step of the explanation shown by the timeline."""

    at: datetime
    user_id: str
    instance_id: str | None
    step: str | None
    action: str
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {"at": format_time(self.at), "user_id": self.user_id, "step": self.step, "action": self.action}
        if self.detail:
            data["detail"] = self.detail
        return data


Command = Send | Skip | Schedule | Cancel | Trace | Mark


@dataclass(slots=True)
class Outcome:
    """What one stimulus did: the instance's new state and what the host must carry out."""

    instance: Instance | None
    commands: list[Command] = field(default_factory=list)
    collected: bool = False  # the event joined the instance's digest: it starts no instance of its own


@quick_init
@dataclass(frozen=True, slots=True)
class Ingested:
    """What became of one event: processed, or acknowledged as a duplicate."""

    event: Event
    duplicate: bool


@dataclass(slots=True)
class Committed:
    """What one committed transaction left for the host: the earliest new timer and the number of
    new sends (what to wake up for); for its metrics, counted here because only the engine sees
    them go by: the new sends' count and cost by channel, the skips by reason, and how late each
    fired timer was (seconds); and its outcomes (with their sends and skips) when the engine was
    asked to keep them for the log. Nothing is counted for a transaction that rolled back."""

    earliest_timer: datetime | None = None
    sends: int = 0
    queued: dict[str, int] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    skips: dict[str, int] = field(default_factory=dict)
    lateness: list[float] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)  # instances that ended `failed`, whatever the cause

    def __bool__(self) -> bool:
        return bool(self.sends or self.earliest_timer or self.skips or self.lateness or self.outcomes or
                    self.failures)

    def note(self, outcome: Outcome, keep: bool) -> None:
        """What one outcome carried out adds: its failure, its earliest timer, its sends and skips
        (and the outcome itself when the host `keep`s them for its decision log)."""
        if keep:
            self.outcomes.append(outcome)
        if outcome.instance is not None and outcome.instance.status == "failed":  # raised, or the runtime's
            self.failures.append(Failure.of(outcome.instance))
        for command in outcome.commands:
            if isinstance(command, Schedule):
                due = command.timer.due
                if self.earliest_timer is None or due < self.earliest_timer:
                    self.earliest_timer = due
            elif isinstance(command, Send):
                self.sent(command)
            elif isinstance(command, Skip):
                self.skipped(command)

    def sent(self, send: Send) -> None:
        self.sends += 1
        self.queued[send.channel] = self.queued.get(send.channel, 0) + 1
        self.cost[send.channel] = self.cost.get(send.channel, 0.0) + send.cost

    def skipped(self, skip: Skip) -> None:
        self.skips[skip.reason] = self.skips.get(skip.reason, 0) + 1


@dataclass(frozen=True, slots=True)
class Failure:
    """One instance that failed on its own (the rest of its batch went on): for logs and metrics."""

    journey_id: str
    version: str
    step: str | None
    instance_id: str
    reason: str
    user_id: str | None = None

    @classmethod
    def of(cls, instance: Instance) -> Failure:
        return cls(instance.journey_id, instance.version, instance.step, instance.instance_id,
                   instance.reason or "", instance.user_id)


def profile_context(profile: Profile) -> dict[str, Any]:
    """The `profile` name seen by expressions and templates."""
    return {"user_id": profile.user_id, "timezone": profile.timezone, "locale": profile.locale, "email": profile.email,
            "phone": profile.phone, "rcs_capable": profile.rcs_capable, "attributes": profile.attributes}


def recipient(profile: Profile, policy: Policy) -> Recipient:
    """Whom templates write for: the profile's locale (else the policy's `default_locale`) and zone
    (else its phone number's, else the policy's `default_timezone`)."""
    return Recipient(profile.locale or policy.default_locale, recipient_zone(profile, policy))


def preferences_page(user_id: str) -> str:
    """`preferences_url` where no server says where it is (a dry run): the page's path, without a key."""
    return f"/v1/users/{quote(user_id, safe='')}/preferences/page"


def journey_context(journey: CompiledJourney) -> dict[str, Any]:
    """The `journey` name seen by expressions and templates."""
    d = journey.definition
    return {"id": d.id, "name": d.name, "category": d.category}


class Run:
    """One stimulus being applied to one instance: working state plus the commands so far."""

    def __init__(self, policy: Policy, tracing: bool, journey: CompiledJourney, instance: Instance, profile: Profile,
                 sent: Sequence[SentRecord], now: datetime, handlers: Mapping[str, Callable[[Run, Step], object]],
                 tracker: Tracker | None = None, recent: RecentView = NO_MARKS,
                 preference_links: Callable[[str], str] = preferences_page) -> None:
        self.policy = policy
        self.preference_links = preference_links  # a person's `preferences_url`
        self.tracing = tracing
        self.tracker = tracker  # rewrites the links of what is rendered (None: the policy tracks none)
        self._handlers = handlers
        self.journey = journey
        self.base = instance
        self.instance_id = instance.instance_id
        self.user_id = instance.user_id
        self.status = instance.status
        self.step = instance.step
        self.path = list(instance.path)
        self.timer = instance.timer
        self.escalation = instance.escalation
        self.seq = instance.seq
        self.event = instance.event
        self.reason = instance.reason
        self.ended_at = instance.ended_at
        self.digest = instance.digest
        self.taken_at = instance.taken_at
        self.expires_at = instance.expires_at
        self.branches = instance.branches
        self.recent = recent
        self.collected = False
        self.profile = profile
        self.sent = list(sent)
        self.now = now
        self.commands: list[Any] = []
        self._profile_ctx: dict[str, Any] | None = None
        self._recipient: Recipient | None = None

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    def outcome(self) -> Outcome:
        """The working state frozen back into an Instance (built once, not per change)."""
        b = self.base
        instance = Instance(instance_id=b.instance_id, journey_id=b.journey_id, version=b.version,
                            user_id=b.user_id, key=b.key, entered_at=b.entered_at, event=self.event,
                            status=self.status, step=self.step, path=tuple(self.path), timer=self.timer,
                            escalation=self.escalation, seq=self.seq, reason=self.reason, ended_at=self.ended_at,
                            digest=self.digest, taken_at=self.taken_at, expires_at=self.expires_at,
                            branches=self.branches)
        return Outcome(instance, self.commands, self.collected)

    def context(self) -> dict[str, Any]:
        if self._profile_ctx is None:
            self._profile_ctx = profile_context(self.profile)
            self._recipient = recipient(self.profile, self.policy)
        context = {"event": self.event, "profile": self._profile_ctx, "journey": journey_context(self.journey),
                   "now": instant(self.now), "preferences_url": self.preference_links(self.user_id),
                   RECIPIENT: self._recipient}
        if self.digest is not None:
            context["digest"] = self.digest.context()
        return context

    def next_id(self, prefix: str) -> str:
        self.seq += 1
        return f"{self.instance_id}:{prefix}{self.seq}"

    def trace(self, step: str | None, action: str, detail: str | None = None) -> None:
        if self.tracing:
            self.commands.append(Trace(self.now, self.user_id, self.instance_id, step, action, detail))

    def schedule(self, kind: str, due: datetime, message: str | None = None) -> None:
        timer = TimerRef(self.next_id("t"), due, kind)
        self.timer = timer
        self.commands.append(Schedule(self.instance_id, self.user_id, timer, message))

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.commands.append(Cancel(self.timer.timer_id))
            self.timer = None

    def finish(self, status: str, detail: str | None = None) -> None:
        self.cancel_timer()
        self.status, self.escalation, self.ended_at = status, None, self.now
        self.reason = detail if status in ("failed", "exited") else None  # what failed; the exit_on event
        self.trace(self.step, status, detail)
        goal = self.journey.definition.goal
        if status != "converted" and goal is not None and goal.within is not None:
            until = self.base.entered_at + goal.within
            if until > self.now:  # its goal may still come: counted once then (engine.service.goals)
                self.commands.append(Mark(self.user_id, GOAL_MARK, self.journey.id, self.now, until, {
                    "instance_id": self.instance_id, "event": goal.event,
                    "tally": tally_key(self.base.version, self.base.entered_at, self.branches)}))

    def advance(self, step_id: str | None) -> None:
        """Run steps from `step_id` until one waits or the journey ends."""
        current: object = END_OF_STEPS if step_id is None else step_id
        for _ in range(MAX_STEPS_PER_STIMULUS):
            if current is END_OF_STEPS:
                self.finish("completed")
                return
            if current is STAY or not self.active:
                return
            assert isinstance(current, str)
            step = self.journey.step(current)
            self.step = current
            self.path.append(current)
            self.trace(current, step.type)
            current = self._handlers[step.type](self, step)
        self.finish("failed", f"more than {MAX_STEPS_PER_STIMULUS} steps without waiting")

    def goto(self, target: str | None, step: Step) -> object:
        resolved = self.journey.resolve(target, step.id)
        return END_OF_STEPS if resolved is None else resolved

    def proceed(self, target: object) -> None:
        """Go on from a waiting step (a timer fired, an event came): to `target`, a step handler's answer."""
        self.advance(target if isinstance(target, str) else None)
