"""The memory store's `Tx`: the engine's unit of work over `MemoryData`, one class per role of
the port (the inbox, the users' state, due timers, the command targets, the users' recent
marks, an audience run's chunk). Every write goes through the data's undo log, so a failed
transaction leaves nothing."""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any

from channels import Profile, SentRecord
from channels.engagement import Engagement
from channels.links import TrackedLink
from engine.events import Event
from engine.ports import EntryHistory
from engine.runs import AudienceRun
from engine.state import Instance, Send, Skip, TimerRef, Trace
from engine.stats import Key
from engine.stores.memory.data import OnData
from engine.stores.memory.recent import MemoryRecent


class MemoryInbox(OnData):
    """`InboxTx`: idempotency keys and the inbox of accepted events."""

    def remember_events(self, event_ids: Sequence[str]) -> set[str]:
        known = self.data.event_ids
        new: set[str] = set()
        for event_id in event_ids:
            if event_id not in known:
                known.add(event_id)
                new.add(event_id)
        self.data.record(lambda: known.difference_update(new))
        return new

    def queue_events(self, events: Sequence[Event]) -> None:
        self.data.inbox.extend(events)
        self.data.record(partial(_drop_last, self.data.inbox, len(events)))

    def claim_queued(self, limit: int) -> list[Event]:
        inbox = self.data.inbox
        claimed = [inbox.popleft() for _ in range(min(limit, len(inbox)))]
        self.data.record(lambda: inbox.extendleft(reversed(claimed)))
        return claimed

    def quarantine_queued(self, error: str) -> str | None:
        inbox = self.data.inbox
        if not inbox:
            return None
        event = inbox.popleft()
        self.data.record(lambda: inbox.appendleft(event))
        self.data.append(self.data.quarantined, (event, error))
        return event.user_id


class MemoryUsers(OnData):
    """`UsersTx`: everything is in memory already, so `prefetch` has nothing to do."""

    def prefetch(self, user_ids: Collection[str], since: datetime) -> None:
        """Everything is in memory already."""

    def get_profile(self, user_id: str) -> Profile | None:
        return self.data.profiles.get(user_id)

    def put_profile(self, profile: Profile) -> None:
        data = self.data
        if profile.user_id not in data.profiles:
            data.order = None
        old = data.profiles.get(profile.user_id)
        if profile.engagement is None and old is not None and old.engagement is not None:
            profile = replace(profile, engagement=old.engagement)  # none given: the stored counts stay
        for record in profile.consents[len(old.consents) if old else 0:]:  # the records the ledger lacks
            data.append(data.ledger, (profile.user_id, record))
        data.set(data.profiles, profile.user_id, profile)

    def put_engagement(self, user_id: str, engagement: Engagement) -> None:
        profile = self.data.profiles.get(user_id)
        if profile is not None:
            self.data.set(self.data.profiles, user_id, replace(profile, engagement=engagement))

    def active_instances(self, user_id: str) -> Sequence[Instance]:
        ids = self.data.active.get(user_id)
        return [self.data.instances[i] for i in ids] if ids else []

    def get_instance(self, instance_id: str) -> Instance | None:
        return self.data.instances.get(instance_id)

    def active_instances_of(self, journey_id: str, limit: int) -> Sequence[Instance]:
        found = (self.data.instances[i] for ids in self.data.active.values() for i in ids)
        return [i for i in found if i.journey_id == journey_id][:limit]

    def entry_history(self, journey_id: str, user_id: str, key: str | None) -> EntryHistory | None:
        last = self.data.entries.get((journey_id, user_id, key))
        if last is None:
            return None
        return EntryHistory(self.data.instances[last[0]].active, last[1])

    def recent_sends(self, user_id: str, since: datetime) -> Sequence[SentRecord]:
        sends = self.data.sends.get(user_id)
        if not sends:
            return ()
        return sends if sends[0].at >= since else [s for s in sends if s.at >= since]

    def latest_message(self, user_id: str, channel: str) -> str | None:
        return self.data.latest.get((user_id, channel))

    def set_message_status(self, user_id: str, message_id: str, status: str, at: datetime) -> None:
        delivery = self.data.deliveries.get(message_id)
        if delivery is None or delivery["send"].user_id != user_id:
            return
        landed = self.data.received(delivery, status)
        if landed is not None:
            self.data.set(self.data.deliveries, message_id, {**delivery, **landed, "status_at": at})

    def suppressed_since(self, phone: str) -> datetime | None:
        return self.data.suppressed.get(phone)

    def record_suppression(self, phone: str, keyword: str, at: datetime, source: str) -> None:
        data = self.data
        data.append(data.suppression_ledger, (phone, keyword, at, source))
        if keyword != "STOP":
            data.pop(data.suppressed, phone)
        elif phone not in data.suppressed:
            data.set(data.suppressed, phone, at)


class MemoryTimers(OnData):
    """`TimersTx`: a heap with lazy deletion (a cancelled timer stays in the heap, not in `live`)."""

    def due_timer_users(self, now: datetime, limit: int) -> set[str]:
        data = self.data
        due = sorted((when, instance_id) for when, _, timer_id, instance_id in data.heap
                     if when <= now and data.live.get(timer_id) == when)[:limit]
        return {data.instances[instance_id].user_id for _, instance_id in due if instance_id in data.instances}

    def claim_due_timers(self, now: datetime, limit: int) -> Sequence[tuple[str, str]]:
        data, heap = self.data, self.data.heap
        due: list[tuple[str, str]] = []
        while heap and heap[0][0] <= now and len(due) < limit:
            entry = heapq.heappop(heap)
            data.record(partial(heapq.heappush, heap, entry))
            when, _, timer_id, instance_id = entry
            if data.live.get(timer_id) == when:
                data.pop(data.live, timer_id)
                due.append((instance_id, timer_id))
        return due


class MemoryCommands(OnData):
    """`CommandsTx`: the runtime's commands, carried out on the data."""

    def save_instance(self, instance: Instance) -> None:
        data = self.data
        if instance.instance_id not in data.instances:
            key = (instance.journey_id, instance.user_id, instance.key)
            data.set(data.entries, key, (instance.instance_id, instance.entered_at))
        data.set(data.instances, instance.instance_id, instance)
        if instance.active:
            data.set(data.active[instance.user_id], instance.instance_id, None)
        else:
            data.pop(data.active[instance.user_id], instance.instance_id)

    def add_message(self, send: Send) -> None:
        data = self.data
        data.append(data.messages, send)
        data.set(data.latest, (send.user_id, send.channel), send.message_id)
        data.append(data.sends[send.user_id], SentRecord(send.channel, send.category, send.at, send.journey_id))
        instance = data.instances.get(send.instance_id or "")  # saved just before its commands
        data.set(data.deliveries, send.message_id, {**_pending(send), "tally": instance.tally if instance else None})
        for position, link in enumerate(send.links):
            data.set(data.links, link.code, link_row(send, link, position))

    def add_timer(self, instance_id: str, timer: TimerRef) -> None:
        data = self.data
        data.seq += 1
        data.set(data.live, timer.timer_id, timer.due)
        heapq.heappush(data.heap, (timer.due, data.seq, timer.timer_id, instance_id))

    def cancel_timer(self, timer_id: str) -> None:
        self.data.pop(self.data.live, timer_id)

    def add_skip(self, skip: Skip) -> None:
        self.data.append(self.data.skips, skip)

    def add_trace(self, trace: Trace) -> None:
        if self.data.keep_trace:
            self.data.append(self.data.traces, trace)

    def count(self, counts: Mapping[Key, float]) -> None:
        self.data.count(counts)


class MemoryMarks(OnData):
    """`RecentTx`: the users' marks, kept with the rest of the data (engine/stores/memory/recent.py)."""

    @property
    def recent(self) -> MemoryRecent:
        return self.data.recent


class MemoryRunChunks(OnData):
    """`RunsTx`: the profiles in user_id order (the order kept sorted until a new profile comes)."""

    def profiles_after(self, user_id: str | None, limit: int) -> Sequence[Profile]:
        data = self.data
        if data.order is None:
            data.order = sorted(data.profiles)
        start = 0 if user_id is None else bisect_right(data.order, user_id)
        found: list[Profile] = []
        for uid in data.order[start:]:
            if len(found) >= limit:
                break
            profile = data.profiles.get(uid)  # gone since (erased, or its write undone)
            if profile is not None:
                found.append(replace(profile, consents=()))
        return found

    def lock_run(self, run_id: str) -> AudienceRun | None:
        return self.data.runs.get(run_id)

    def save_run(self, run: AudienceRun) -> None:
        self.data.set(self.data.runs, run.run_id, run)


class MemoryTx(MemoryInbox, MemoryUsers, MemoryTimers, MemoryCommands, MemoryMarks, MemoryRunChunks):
    """The `Tx` port in memory: its six roles over one `MemoryData`. It holds nothing of its own,
    so one serves every transaction; `MemoryStore.transaction` gives the undo log its bounds."""


def _drop_last(items: deque[Event], count: int) -> None:
    for _ in range(count):
        items.pop()


def link_row(send: Send, link: TrackedLink, position: int) -> dict[str, Any]:
    """A tracked link as the SQL store's `links` table holds it."""
    return {"code": link.code, "message_id": send.message_id, "user_id": send.user_id, "channel": send.channel,
            "url": link.url, "position": position, "at": send.at, "hits": 0, "machine_hits": 0,
            "first_hit_at": None, "last_hit_at": None}


def _pending(send: Send) -> dict[str, Any]:
    return {"send": send, "dispatch": "pending", "status": "queued", "status_at": None, "attempts": 0,
            "next_attempt_at": send.at, "provider": None, "provider_id": None, "error": None}
