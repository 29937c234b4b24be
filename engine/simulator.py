"""Dry runs: the real Engine on a memory store and a virtual clock, no providers, nothing stored.

The clock starts at the first event and jumps from stimulus to stimulus, so a journey
that waits a week runs in milliseconds, and the result shows every message, decision
and cost before launch.
"""

from __future__ import annotations

import gc
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import groupby, islice
from pathlib import Path
from typing import Any

from channels import Decision, Policy, Profile, ProfileError, SendRequest, select, sms_encoding
from channels.links import seeded_codes
from channels.yaml_lines import did_you_mean
from engine.audience.entry import run_chunk
from engine.clock import VirtualClock, counter_ids
from engine.compiler import CompiledJourney, Rendered
from engine.errors import EventError, InputError, JourneyNotFoundError
from engine.events import Event, check_values, format_time, parse_event
from engine.expressions import instant
from engine.runs import AudienceRun
from engine.sandbox import RECIPIENT
from engine.schedule import occurrences, parse_instant
from engine.service import Engine
from engine.state import END_STATUSES, Instance, journey_context, preferences_page, profile_context, recipient
from engine.stores.memory import MemoryStore
from engine.stores.memory.tx import MemoryTx

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RUN_CHUNK = 1000  # profiles per transaction of an audience run, as `journey serve` takes them
MAX_RUNS = 1000  # audience runs in one dry run


def read_jsonl(path: str | Path) -> list[tuple[int, Any]]:
    """(line number, parsed JSON) for every non-blank line; bad JSON names its line."""
    rows: list[tuple[int, Any]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rows.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: invalid JSON: {exc.msg}") from None
    return rows


def parse_events(rows: Iterable[tuple[str, Any]]) -> list[Event]:
    """Events sorted by timestamp (stable); every event must carry its own timestamp."""
    events: list[Event] = []
    for where, data in rows:
        if isinstance(data, Mapping) and data.get("timestamp") is None:
            raise InputError(f"{where}: timestamp: required in a simulation (the clock follows the events)")
        try:
            events.append(parse_event(data, _EPOCH))
        except EventError as exc:
            raise InputError(f"{where}: {exc}") from None
    return sorted(events, key=lambda e: e.timestamp)


def parse_profiles(rows: Iterable[tuple[str, Any]], consented_at: datetime | None = None) -> list[Profile]:
    """Profiles as the API takes them: a consent without `at` (or with `at: null`) is dated
    `consented_at` (the run's start; default 1970-01-01) and one without `source` is `simulation`;
    every string and number is checked as an event's are. An error is `where: field: problem`."""
    stamp = {"source": "simulation", "at": format_time(consented_at or _EPOCH)}
    profiles: list[Profile] = []
    for where, data in rows:
        if isinstance(data, Mapping) and isinstance(data.get("consents"), list):
            data = {**data, "consents": [_stamped(c, stamp) if isinstance(c, Mapping) else c
                                         for c in data["consents"]]}
        try:
            check_values(data, "profile")
            profiles.append(Profile.from_dict(data))
        except EventError as exc:
            raise InputError(f"{where}: {str(exc).removeprefix('profile.')}") from None
        except ProfileError as exc:
            raise InputError(f"{where}: {exc}") from None
    return profiles


def _stamped(consent: Mapping[str, Any], stamp: Mapping[str, str]) -> dict[str, Any]:
    return {**stamp, **consent, "at": stamp["at"] if consent.get("at") is None else consent["at"]}


Progress = Callable[[int, int, str], None]
"""Told (done, in all, phase) as a dry run goes: `events` (events and audience runs applied; the
clock follows them), then `timers` (those left after the last event: fired, and fired plus still
set, which may grow), then `report` (1, 1) while the document is built."""


def simulate(journey: CompiledJourney, events: Sequence[Event], profiles: Sequence[Profile], policy: Policy,
             keep_trace: bool = True, roundtrip: bool = False, progress: Progress | None = None,
             start: datetime | None = None, until: datetime | None = None, now: datetime | None = None,
             ) -> dict[str, Any]:
    """Run `journey` over `events` (and, for a journey entered by audience runs, its runs from
    `start` to `until`: see `run_times`); returns the simulate document (docs/cli.md)."""
    store = MemoryStore(keep_trace, _RoundTripTx if roundtrip else MemoryTx)
    with store.transaction() as tx:
        for profile in profiles:
            tx.put_profile(profile)
    runs = run_times(journey, policy, events, start, until, now)
    if not events and not runs:
        return report(journey, store, set())
    with _fewer_gc_passes():
        return _run(journey, events, runs, policy, store, keep_trace, progress)


def run_times(journey: CompiledJourney, policy: Policy, events: Sequence[Event], start: datetime | None = None,
              until: datetime | None = None, now: datetime | None = None) -> list[datetime]:
    """When a dry run runs the journey's audience: its occurrences from `start` (default: an `at`
    trigger's instant; else the first event's time, else `now`) to `until` (default: the first one only)."""
    trigger = journey.definition.trigger
    if trigger.kind == "event":
        return []
    zone = policy.default_timezone
    if start is None:
        start = parse_instant(trigger.at, trigger.timezone or zone) if trigger.at is not None else \
            events[0].timestamp if events else now
    if start is None:
        raise InputError("start: required for a scheduled journey without events (the clock starts there)")
    times = list(islice(occurrences(trigger, zone, start, until), 1 if until is None else MAX_RUNS + 1))
    if until is not None and len(times) > MAX_RUNS:
        raise InputError(f"until: more than {MAX_RUNS} runs between {format_time(start)} and {format_time(until)}")
    return times


def _run(journey: CompiledJourney, events: Sequence[Event], runs: Sequence[datetime], policy: Policy,
         store: MemoryStore, keep_trace: bool, progress: Progress | None) -> dict[str, Any]:
    runs_at: list[tuple[datetime, int, list[Event]]] = [(at, n, []) for n, at in enumerate(runs, 1)]
    batches = [(at, 0, list(group)) for at, group in groupby(events, key=lambda e: e.timestamp)]
    stimuli = sorted(runs_at + batches, key=lambda s: (s[0], not s[1]))  # a run goes first at its instant
    clock = VirtualClock(stimuli[0][0])
    engine = Engine([journey], policy, store, clock, counter_ids("i"), trace=keep_trace, codes=seeded_codes())
    done = 0
    for at, run, batch in stimuli:
        _run_timers(engine, clock, until=at, inclusive=False)
        clock.advance_to(at)
        if run:
            audience_run(engine, store, journey, f"r{run}", at)
        else:
            engine.process_many(batch)
        done += len(batch) or 1
        if progress is not None:
            progress(done, len(events) + len(runs), "events")
    _run_timers(engine, clock, until=None, inclusive=True, progress=progress, store=store)
    if progress is not None:
        progress(1, 1, "report")
    users = {e.user_id for e in events} | (set(store.data.profiles) if runs else set())
    return report(journey, store, users)


def audience_run(engine: Engine, store: MemoryStore, journey: CompiledJourney, run_id: str, at: datetime) -> None:
    """Every profile, a chunk at a time, through the same entry as `journey serve`'s runs (a
    forecast runs each person's path through it too)."""
    store.runs.add_run(AudienceRun(run_id=run_id, journey_id=journey.id, version=journey.version,
                              trigger=journey.definition.trigger.kind, scheduled_at=at, created_at=at))
    while (run := run_chunk(engine, run_id, RUN_CHUNK)) is not None and run.working:
        pass


@contextmanager
def _fewer_gc_passes() -> Iterator[None]:
    """A dry run allocates millions of long-lived objects and frees few: the default collector
    thresholds would rescan them over and over (about 20% of a 100,000-user run)."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def _run_timers(engine: Engine, clock: VirtualClock, until: Any, inclusive: bool, progress: Progress | None = None,
                store: MemoryStore | None = None) -> None:
    """Fire timers in time order up to `until` (events win ties: they arrived in time), telling
    `progress` how many fired and how many are still set."""
    fired = 0
    while (due := engine.store.next_due()) is not None:
        if until is not None and (due > until or (due == until and not inclusive)):
            return
        clock.advance_to(due)
        fired += engine.fire_due(limit=10_000)
        if progress is not None and store is not None:
            progress(fired, fired + store.timers_set(), "timers")


def report(journey: CompiledJourney, store: MemoryStore, users: set[str]) -> dict[str, Any]:
    instances = list(store.data.instances.values())
    statuses = Counter(i.status for i in instances)
    messages = [m.to_dict() for m in store.data.messages]
    summary = {
        "users": len(users), "entered": len(instances),
        **{status: statuses.get(status, 0) for status in END_STATUSES},
        "active": statuses.get("active", 0),
        "conversions": _conversions(journey, store),
        "messages": dict(Counter(m["channel"] for m in messages)),
        "cost": round(sum(m["cost"] for m in messages), 6),
    }
    summary = {k: summary[k] for k in ("users", "entered", "completed", "exited", "converted", "conversions",
                                        "active", "failed", "messages", "cost")}
    document = {
        "journey": journey.id, "summary": summary, "messages": messages,
        "skipped": [s.to_dict() for s in store.data.skips],
        "instances": [_instance_row(i) for i in instances],
        "timeline": [t.to_dict() for t in store.data.traces],
    }
    if journey.definition.trigger.kind != "event":
        document["runs"] = [_run_row(r) for r in sorted(store.data.runs.values(), key=lambda r: r.scheduled_at)]
    return document


def _conversions(journey: CompiledJourney, store: MemoryStore) -> int:
    """Goals reached within `goal.within` of entry, after the instance ended too: the counters the
    Engine kept as it ran (engine.stats; the goal marks of engine/service/goals.py), as
    `GET /v1/journeys/{id}/stats` reads them."""
    rows = store.views.journey_counts(journey.id, None, None, None)
    return round(sum(value for path, name, value in rows if path == "" and name == "conversions"))


def _run_row(run: AudienceRun) -> dict[str, Any]:
    view = run.view()
    return {k: view[k] for k in ("run_id", "trigger", "scheduled_at", "profiles", "matched", "entered", "skipped")}


def _instance_row(instance: Instance) -> dict[str, Any]:
    row: dict[str, Any] = {"user_id": instance.user_id, "key": instance.key, "status": instance.status,
                           "path": list(instance.path)}
    if instance.reason:
        row["reason"] = instance.reason
    return row


def preview(journey: CompiledJourney, message: str, profile: Profile, event: Event, policy: Policy,
            now: datetime, channels: Sequence[str] | None = None,
            preference_links: Callable[[str], str] = preferences_page) -> dict[str, Any]:
    """`message` rendered for `profile` as a send at `now` would render it, per channel (each of the
    message's, or `channels`): the variant its locale picks, the content, SMS encoding and segments,
    the cost at the policy's prices, and whether the channel could be used now and why not (consent,
    preferences, address; no caps: nothing was sent before). Nothing is sent or stored."""
    if message not in journey.definition.messages:
        hint = did_you_mean(message, journey.definition.messages)
        raise JourneyNotFoundError(f"message: journey '{journey.id}' has no message '{message}'{hint}")
    has = journey.definition.messages[message].channels()
    wanted = tuple(channels or has)
    missing = [c for c in wanted if c not in has]
    if missing:
        raise JourneyNotFoundError(f"channel: message '{message}' has no {', '.join(missing)} content "
                                   f"(it has {', '.join(has)})")
    who = recipient(profile, policy)
    context = {"event": event.context(), "profile": profile_context(profile), "journey": journey_context(journey),
               "now": instant(now), "preferences_url": preference_links(profile.user_id), RECIPIENT: who}
    rendered = journey.render_channels(message, wanted, context)
    selection = select(SendRequest(profile=profile, category=journey.definition.category, urgency="normal",
                                   candidates=wanted, contents=rendered.contents, template_errors=rendered.errors,
                                   sent=(), now=now, strategy="all",
                                   muted=journey.definition.mutable and profile.preferences.mutes(journey.id)), policy)
    decisions = {d.channel: d for d in selection.decisions}
    return {"journey": journey.id, "version": journey.version, "message": message, "user_id": profile.user_id,
            "locale": who.locale, "timezone": str(who.zone),
            "channels": [_previewed(c, rendered, decisions[c], policy) for c in wanted]}


def _previewed(channel: str, rendered: Rendered, decision: Decision, policy: Policy) -> dict[str, Any]:
    content = rendered.contents.get(channel)
    encoded = sms_encoding(content["text"]) if channel == "sms" and content and "text" in content else None
    segments = encoded.segments if encoded is not None else None
    return {"channel": channel, "locale": rendered.locales.get(channel), "content": content,
            "error": rendered.errors.get(channel), "encoding": encoded.encoding if encoded else None,
            "segments": segments, "cost": round(policy.fast.costs[channel] * (segments or 1), 6),
            "eligible": decision.eligible, "reason": decision.reason}


class _RoundTripTx(MemoryTx):
    """Serialises every instance to JSON and back on each save: proves state survives a restart."""

    def save_instance(self, instance: Instance) -> None:
        super().save_instance(Instance.from_dict(json.loads(json.dumps(instance.to_dict()))))
