"""Committed per-user state kept in memory between transactions: a user seen before costs no
query at all on SQLite (this process is the only writer), and on PostgreSQL one statement a
batch that checks the state is still what the database holds (engine/stores/sql/stamps.py).
A transaction that fails evicts every user it touched, so the cache never holds anything the
database does not. On PostgreSQL the cache holds only the users of the partitions this worker
owns (`own`): a handover evicts the users of every partition lost."""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from channels import Profile, SentRecord
from engine.state import Instance, Partitioning
from engine.stores.sql.stamps import Stamp


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
    stamp: Stamp | None = None  # PostgreSQL: the rows' versions this state was read at (or written as)
    busy: int = 0  # PostgreSQL: transactions of this process holding it, maybe with writes not committed


@dataclass(slots=True)
class StateCache:
    """Committed user state kept between transactions, and which user owns each active instance."""

    users: dict[str, UserState] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    suppressed: dict[str, datetime | None] = field(default_factory=dict)  # phone -> since (None: not)
    limit: int = 250_000
    checked: bool = False  # PostgreSQL: other workers write too; every use is checked against `Stamp`s
    owned: frozenset[int] | None = None  # PostgreSQL: the partitions this worker leases (None: no leases)
    partitioning: Partitioning = field(default_factory=Partitioning)
    _turns: threading.Lock = field(default_factory=threading.Lock)  # `busy` moved by several threads

    def hold(self, state: UserState) -> None:
        """A transaction of this process takes `state` (PostgreSQL: the dispatcher then reads it
        from the database, whatever its stamp says, until `let_go`)."""
        with self._turns:
            state.busy += 1

    def let_go(self, states: Collection[UserState]) -> None:
        with self._turns:
            for state in states:
                state.busy -= 1

    def own(self, parts: frozenset[int], partitioning: Partitioning) -> None:
        """The partitions this worker owns now (on Citus, shards): the users of those it no longer
        owns are forgotten (their new owner writes them from now on, and may already have)."""
        if parts == self.owned and partitioning == self.partitioning:
            return
        self.owned, self.partitioning = parts, partitioning
        self.evict([u for u in list(self.users) if partitioning.of(u) not in parts])  # list: other threads add

    def keeps(self, user_id: str) -> bool:
        """Whether this user's state may be kept: always on SQLite; on PostgreSQL while this worker
        owns the user's partition (or takes no leases at all)."""
        return self.owned is None or self.partitioning.of(user_id) in self.owned

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
        kept = {u: state for u, state in states.items() if self.keeps(u)}
        self.users.update(kept)
        for user_id, state in kept.items():
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

    def checked_profiles(self, current: dict[str, int]) -> tuple[dict[str, Profile], list[str]]:
        """PostgreSQL: of the users whose profile rows are at these versions (`current`, user_id ->
        xmin), the profiles held at the same version by no transaction in flight; and the others."""
        found: dict[str, Profile] = {}
        missing: list[str] = []
        for user_id, xmin in current.items():
            state = self.users.get(user_id)
            if state is not None and not state.busy and state.profile is not None and state.stamp is not None \
                    and state.stamp.profile == xmin:
                found[user_id] = state.profile
            else:
                missing.append(user_id)
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
