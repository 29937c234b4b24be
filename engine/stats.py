"""Journey analytics as counters: what each change of an instance or a message adds, and the
stats document (`GET /v1/journeys/{id}/stats`) summed from them. Pure: no I/O, no clock.

Counters are kept as the engine runs, never scanned out of the instances or messages: each
carried-out outcome adds its deltas (`outcome_counts`), each status that comes for a message
its own (`received`), and the stores add them up per transaction. A counter is one number under
a `Key`: the journey, the version and the hour of entry of the instance it is about (so `since`
and `until` read whole hours of counters, never instances), the path (`""`: every instance; a
split's branch, `<split step>:<branch>`, for the instances that took it) and its name:

- `entered`; `ended:<status>` (completed, exited, converted, failed, cancelled); `conversions`
- `step:<s>:entered`, `step:<s>:waiting` (up and down as instances come to rest and go on),
  `edge:<s>:<t>` (instances that went from s to t)
- `msg:<channel>:<status>` (queued, sent, delivered, failed, cancelled, unknown: each message in
  one, moved as its status changes), `cost:<channel>`, `skip:<channel>:<reason>`,
  `engaged:<channel>:<kind>` (opened, clicked, read, replied...)

A split's branch keeps entered, ended, conversions and the message counters from the moment the
instance took it; the steps are drawn on the whole journey only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from engine.state import Instance, Outcome, Send, Skip, hour_of

INSTANCE_STATUSES = ("active", "completed", "exited", "converted", "failed", "cancelled")
MESSAGE_STATUSES = ("queued", "sent", "delivered", "failed", "cancelled", "unknown")
CANCELLED_REASONS = frozenset({"cancelled_by_api", "journey_stopped", "erased"})
"""An instance ended from outside its journey (the cancel route, a stop, an erasure) counts as cancelled."""
DELIVERY = {"queued": "queued", "sending": "queued", "sent": "sent", "failed": "failed", "bounced": "failed",
            "cancelled": "cancelled", "unknown": "unknown"}
"""Which `msg:` counter a message status is in; any other (delivered, opened, read, replied...) is delivered."""


class Key(NamedTuple):
    """Where one counter lives: journey, version, hour of entry (`hour_of`), path, name."""

    journey_id: str
    version: str
    hour: str
    path: str
    name: str


Counts = dict[Key, float]


def hour_start(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H").replace(tzinfo=UTC)


def bounds(since: datetime | None, until: datetime | None) -> tuple[str | None, str | None]:
    """The hours that hold the instances entered at or after `since` and before `until`: `since`
    taken down to its hour, `until` up to the next one (buckets are whole hours)."""
    low = hour_of(since) if since is not None else None
    high = None
    if until is not None:
        top = until.astimezone(UTC)
        floor = top.replace(minute=0, second=0, microsecond=0)
        high = hour_of(floor if floor == top else floor + timedelta(hours=1))
    return low, high


def _keys(journey_id: str, tally: str) -> tuple[str, str, tuple[str, ...]]:
    version, hour, branches = tally.split("|", 2)
    return version, hour, ("", *(b for b in branches.split(",") if b))


def ended_as(instance: Instance) -> str:
    """The status an ended instance is counted under."""
    if instance.status == "exited" and instance.reason in CANCELLED_REASONS:
        return "cancelled"
    return instance.status


def outcome_counts(before: Instance | None, outcome: Outcome) -> Counts:
    """What carrying `outcome` out adds, `before` being the instance as it was (None: it entered now)."""
    after = outcome.instance
    if after is None:
        return {}
    counts: Counts = {}
    base = (after.journey_id, after.version, hour_of(after.entered_at))

    def add(path: str, name: str, value: float = 1.0) -> None:
        key = Key(*base, path, name)
        counts[key] = counts.get(key, 0.0) + value

    _instance_moves(before, after, add)
    paths = ("", *after.branches)
    for command in outcome.commands:
        if isinstance(command, Send):
            for path in paths:
                add(path, f"msg:{command.channel}:queued")
                add(path, f"cost:{command.channel}", command.cost)
        elif isinstance(command, Skip):
            for decision in command.decisions:
                if not decision.eligible:
                    for path in paths:
                        add(path, f"skip:{decision.channel}:{decision.reason}")
    return {k: v for k, v in counts.items() if v}


def _instance_moves(before: Instance | None, after: Instance, add: Any) -> None:
    """Entry, steps entered and left, where it waits, branches taken, how it ended."""
    old_path = before.path if before is not None else ()
    if before is None:
        add("", "entered")
    for branch in after.branches[len(before.branches) if before is not None else 0:]:
        add(branch, "entered")
    path = after.path
    for n in range(len(old_path), len(path)):
        add("", f"step:{path[n]}:entered")
        if n > 0:
            add("", f"edge:{path[n - 1]}:{path[n]}")
    if before is not None and before.active and before.step is not None:
        add("", f"step:{before.step}:waiting", -1.0)
    if after.active and after.step is not None:
        add("", f"step:{after.step}:waiting")
    if (before is None or before.active) and not after.active:
        status = ended_as(after)
        for branch in ("", *after.branches):
            add(branch, f"ended:{status}")
            if status == "converted":
                add(branch, "conversions")


def conversion_counts(journey_id: str, tally: str) -> Counts:
    """A goal reached after its instance ended (within `goal.within` of entry): one conversion."""
    version, hour, paths = _keys(journey_id, tally)
    return {Key(journey_id, version, hour, path, "conversions"): 1.0 for path in paths}


RANK = {"queued": 0, "sending": 1, "sent": 2, "unknown": 2, "delivered": 3, "failed": 3, "bounced": 3,
        "cancelled": 3}
"""How far along a message is; any other status (opened, clicked, read, replied...) is engagement, 4.
A receipt never moves a message back: a late `delivered` after `opened` keeps `opened`."""
ENGAGED_RANK = 4


class Receipt(NamedTuple):
    """A message after a status came for it: its status, the kinds of engagement counted for it
    (comma-separated, in the order they came), and what the counters move."""

    status: str
    engaged: str
    counts: Counts
    changed: bool  # its status or its engagement: else there is nothing to write


def received(journey_id: str | None, tally: str | None, channel: str, status: str, engaged: str | None,
             new: str) -> Receipt:
    """`new` coming for a message now `status` with `engaged` counted: the status moves only
    forward (or to another of the same rank: the latest engagement is shown), its `msg:` counter
    with it when its delivery changes, and an engagement kind is counted once per message, as the
    person's engagement counts it (channels/engagement.py)."""
    engaged = engaged or ""
    kept = new if RANK.get(new, ENGAGED_RANK) >= RANK.get(status, ENGAGED_RANK) else status
    kinds = engaged.split(",") if engaged else []
    fresh = RANK.get(new, ENGAGED_RANK) == ENGAGED_RANK and new not in kinds
    counts = status_counts(journey_id, tally, channel, status, kept)
    if fresh:
        kinds.append(new)
        if journey_id is not None and tally:
            version, hour, paths = _keys(journey_id, tally)
            for path in paths:
                counts[Key(journey_id, version, hour, path, f"engaged:{channel}:{new}")] = 1.0
    return Receipt(kept, ",".join(kinds), counts, fresh or kept != status)


def status_counts(journey_id: str | None, tally: str | None, channel: str, old: str, new: str) -> Counts:
    """What a message's status changing from `old` to `new` moves: its `msg:` counter when its
    delivery changes (an engagement implies delivery). Engagement is counted by `received`."""
    if journey_id is None or not tally or old == new:
        return {}
    version, hour, paths = _keys(journey_id, tally)
    counts: Counts = {}
    was, now = DELIVERY.get(old, "delivered"), DELIVERY.get(new, "delivered")
    if was != now:
        for path in paths:
            counts[Key(journey_id, version, hour, path, f"msg:{channel}:{was}")] = -1.0
            counts[Key(journey_id, version, hour, path, f"msg:{channel}:{now}")] = 1.0
    return counts


def merge(into: Counts, more: Mapping[Key, float]) -> None:
    for key, value in more.items():
        into[key] = into.get(key, 0.0) + value


def document(journey_id: str, rows: Iterable[tuple[str, str, float]], version: int | None,
             since: str | None, until: str | None, steps: Sequence[str] = ()) -> dict[str, Any]:
    """The stats document from summed counters: (path, name, value) rows. `steps`: the journey's
    steps, each shown even when no instance reached it."""
    by_path: dict[str, dict[str, float]] = {}
    for path, name, value in rows:
        names = by_path.setdefault(path, {})
        names[name] = names.get(name, 0.0) + value
    whole = by_path.pop("", {})
    doc = {"journey": journey_id, "version": version, "since": since, "until": until, **_totals(whole),
           "steps": _steps(whole, steps)}
    doc["channels"] = _channels(whole)
    paths: dict[str, dict[str, Any]] = {}
    for path in sorted(by_path):
        split, _, branch = path.partition(":")
        names = by_path[path]
        paths.setdefault(split, {})[branch] = {**_totals(names), "channels": _channels(names)}
    doc["paths"] = paths
    return doc


def _totals(names: Mapping[str, float]) -> dict[str, Any]:
    entered = _int(names.get("entered", 0.0))
    ended = {s: _int(names.get(f"ended:{s}", 0.0)) for s in INSTANCE_STATUSES[1:]}
    return {"entered": entered, "instances": {"active": entered - sum(ended.values()), **ended},
            "conversions": _int(names.get("conversions", 0.0))}


def _steps(names: Mapping[str, float], order: Sequence[str]) -> dict[str, Any]:
    steps: dict[str, dict[str, Any]] = {s: {"entered": 0, "waiting": 0, "left": {}} for s in order}
    for name, value in names.items():
        kind, _, rest = name.partition(":")
        if kind == "step":
            step, _, what = rest.rpartition(":")
            steps.setdefault(step, {"entered": 0, "waiting": 0, "left": {}})[what] = _int(value)
        elif kind == "edge":
            source, _, target = rest.partition(":")
            steps.setdefault(source, {"entered": 0, "waiting": 0, "left": {}})["left"][target] = _int(value)
    return steps


def _channels(names: Mapping[str, float]) -> dict[str, Any]:
    channels: dict[str, dict[str, Any]] = {}
    for name, value in sorted(names.items()):
        kind, _, rest = name.partition(":")
        if kind not in ("msg", "cost", "skip", "engaged"):
            continue
        channel, _, what = rest.partition(":")
        entry = channels.setdefault(channel, {"messages": dict.fromkeys(MESSAGE_STATUSES[:5], 0), "skipped": {},
                                              "engagement": {}, "cost": 0.0})
        if kind == "msg":
            entry["messages"][what] = _int(value)
        elif kind == "cost":
            entry["cost"] = round(value, 6)
        elif kind == "skip":
            entry["skipped"][what] = _int(value)
        else:
            entry["engagement"][what] = _int(value)
    return channels


def _int(value: float) -> int:
    return int(round(value))
