"""Committed per-user state kept in memory between transactions (SQLite, where this process
is the only writer): a user seen before costs no query at all. A transaction that fails
evicts every user it touched, so the cache never holds anything the database does not."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from channels import Profile, SentRecord
from engine.state import Instance


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
    suppressed: dict[str, datetime | None] = field(default_factory=dict)  # phone -> since (None: not)
    limit: int = 250_000

    def remember_numbers(self, numbers: dict[str, datetime | None]) -> None:
        if len(self.suppressed) + len(numbers) > self.limit:  # bounded: start again
            self.suppressed.clear()
        self.suppressed.update(numbers)

    def forget_numbers(self, numbers: Collection[str]) -> None:
        for number in numbers:
            self.suppressed.pop(number, None)

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

    def profiles(self, user_ids: Collection[str]) -> tuple[dict[str, Profile], list[str]]:
        """The profiles of the users held (a user held without one has none), and the users not
        held. Committed state only while no transaction is in flight (the store's writer lock)."""
        found: dict[str, Profile] = {}
        missing: list[str] = []
        for user_id in user_ids:
            state = self.users.get(user_id)
            if state is None:
                missing.append(user_id)
            elif state.profile is not None:
                found[user_id] = state.profile
        return found, missing

    def suppressions(self, numbers: Collection[str]) -> tuple[dict[str, datetime], list[str]]:
        """The numbers held that are suppressed, with since, and the numbers not held."""
        found: dict[str, datetime] = {}
        missing: list[str] = []
        for number in numbers:
            if number not in self.suppressed:
                missing.append(number)
            elif (since := self.suppressed[number]) is not None:
                found[number] = since
        return found, missing

    def owner(self, instance_id: str) -> UserState | None:
        user_id = self.owners.get(instance_id)
        state = self.users.get(user_id) if user_id is not None else None
        return state if state is not None and instance_id in state.active else None


def forget_sends_before(state: UserState, since: datetime) -> None:
    """Cached send history only needs the caps' window; older records would only pile up."""
    if state.sends and state.sends[0].at < since:
        state.sends = [s for s in state.sends if s.at >= since]
        state.sends_since = since
