"""Who a forecast runs over: each person's profile and their events, streamed from JSON Lines
files, a database, or lists (the HTTP body), one share of them per worker process.

A person's share is by a hash (`share_of`) of what alike people share (`_alike`, for files) or of
their user id, so every worker reads the files through but parses and keeps only its own people
and their events; memory holds one worker's events and one profile at a time. A user with events
and no profile is a person with an empty one, as `journey simulate` takes them.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from channels import Profile
from channels.timestamps import read_timestamp
from engine.errors import InputError
from engine.events import Event
from engine.simulator import parse_events, parse_profiles

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PAGE = 1000
"""Profiles read from a database per query."""


class Person(NamedTuple):
    profile: Profile
    events: Sequence[Event]


class Share(NamedTuple):
    """Worker `number` of `workers`: the people whose user id hashes to `number`."""

    number: int = 0
    workers: int = 1

    def holds(self, user_id: str) -> bool:
        return self.workers == 1 or share_of(user_id, self.workers) == self.number


def share_of(user_id: str, count: int) -> int:
    return zlib.crc32(user_id.encode()) % count


def read_lines(path: Path, keep: Callable[[Any], bool]) -> Iterator[tuple[str, Any]]:
    """(`file:line`, parsed JSON) of each non-blank line `keep` wants (it sees the parsed value);
    bad JSON names its line."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                data = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: invalid JSON: {exc}") from None
            if keep(data):
                yield f"{path}:{number}", data


def _time_of(data: Any) -> datetime | None:
    """An event line's time, if it has one that reads (a bad one is reported by its worker)."""
    try:
        return read_timestamp(data.get("timestamp")) if isinstance(data, dict) else None
    except ValueError:
        return None


def _user(data: Any) -> str | None:
    user = data.get("user_id") if isinstance(data, dict) else None
    return user if isinstance(user, str) else None


Owner = Callable[[str], bool]
"""Whether a user id is this worker's."""


def _mine(share: Share, owns: Owner) -> Callable[[Any], bool]:
    """Keeps a line of this share, and a line without a user id (its error is reported once, by worker 0)."""
    def keep(data: Any) -> bool:
        user = _user(data)
        return owns(user) if user is not None else share.number == 0

    return keep


def _alike(profiles: Path, events: Path) -> dict[str, str]:
    """Each user's hint of the people alike for a journey: zone, engagement history and first event
    time, which alike people share. Sharing out people by it keeps most of a class in one worker,
    so its paths are evaluated once rather than once per worker. (Only where people go: a hint
    that misses costs an evaluation, never an answer.)"""
    first: dict[str, str] = {}
    for _, data in read_lines(events, lambda data: isinstance(data, dict)):
        user, at = _user(data), data.get("timestamp")
        if user is not None and isinstance(at, str) and (user not in first or at < first[user]):
            first[user] = at
    hints: dict[str, str] = {}
    for _, data in read_lines(profiles, lambda data: _user(data) is not None):
        user = str(data["user_id"])
        engagement = orjson.dumps(data.get("engagement"), option=orjson.OPT_SORT_KEYS).decode()
        hints[user] = f"{data.get('timezone')}|{engagement}|{first.get(user)}"
    return hints


@dataclass(frozen=True)
class Population:
    """The profiles (a file, a database URL, or a list) and the events (a file or a list)."""

    profiles: Path | str | Sequence[Profile] = ()
    events: Path | Sequence[Event] = ()

    def first_time(self) -> datetime | None:
        """The earliest event's time: consents without `at` are as of then, as in `journey simulate`."""
        if isinstance(self.events, Path):  # each time read alone: the workers check the events
            times = (_time_of(data) for _, data in read_lines(self.events, lambda data: True))
            return min((t for t in times if t is not None), default=None)
        return min((e.timestamp for e in self.events), default=None)

    def people(self, share: Share, consented_at: datetime | None) -> Iterator[Person]:
        """This share's people, each with their events in time order."""
        owns = self._owner(share)
        events = self._events(share, owns)
        for profile in self._profiles(share, owns, consented_at):
            yield Person(profile, events.pop(profile.user_id, ()))
        for user_id in sorted(events):
            yield Person(Profile(user_id), events[user_id])

    def _owner(self, share: Share) -> Owner:
        """Files are shared out by `_alike`'s hints; a database or lists by user id."""
        if share.workers == 1 or not isinstance(self.profiles, Path) or not isinstance(self.events, Path):
            return share.holds
        hints = _alike(self.profiles, self.events)
        return lambda user: share_of(hints.get(user, user), share.workers) == share.number

    def _events(self, share: Share, owns: Owner) -> dict[str, list[Event]]:
        rows: Iterable[Event] = parse_events(read_lines(self.events, _mine(share, owns))) \
            if isinstance(self.events, Path) else (e for e in self.events if owns(e.user_id))
        by_user: dict[str, list[Event]] = defaultdict(list)
        for event in rows:
            by_user[event.user_id].append(event)
        return by_user

    def _profiles(self, share: Share, owns: Owner, consented_at: datetime | None) -> Iterator[Profile]:
        source = self.profiles
        if isinstance(source, Path):
            for where, data in read_lines(source, _mine(share, owns)):
                yield from parse_profiles([(where, data)], consented_at)
        elif isinstance(source, str):
            yield from _stored(source, share)
        else:
            yield from (p for p in source if owns(p.user_id))

    def count(self) -> int | None:
        """How many profiles there are, when that is cheap to know (a file's lines, a list)."""
        if isinstance(self.profiles, Path):
            with open(self.profiles, "rb") as handle:
                return sum(1 for line in handle if line.strip())
        if isinstance(self.profiles, str):
            return None
        return len(self.profiles)


def _stored(url: str, share: Share) -> Iterator[Profile]:
    """A database's profiles in user id order, a page per transaction (read only)."""
    from engine.stores.sql import SqlStore  # the database stack loads only for --db

    store = SqlStore(url)
    try:
        cursor: str | None = None
        while True:
            with store.transaction() as tx:
                page = [p.user_id for p in tx.profiles_after(cursor, PAGE)]
                mine = [u for u in page if share.holds(u)]
                tx.prefetch(mine, _EPOCH)
                profiles = [tx.get_profile(u) for u in mine]
            yield from (p for p in profiles if p is not None)
            if len(page) < PAGE:
                return
            cursor = page[-1]
    finally:
        store.close()
