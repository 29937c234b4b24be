"""The memory store's recent marks (`engine.ports.Recent`): each user's marks in a list, oldest
first. Expired marks go on write: the writer's own at once, everyone's in a pass every
`SWEEP_EVERY` writes, so a user who is never seen again does not keep theirs for good. Every
change is undone with the transaction it was made in (`MemoryData`'s undo log)."""

from __future__ import annotations

from collections.abc import Callable, Collection, MutableMapping, Sequence
from datetime import datetime
from typing import Any

from engine.state import Mark

SWEEP_EVERY = 1000  # writes between two passes over every user's marks

Setter = Callable[[MutableMapping[Any, Any], Any, Any], None]
Popper = Callable[[MutableMapping[Any, Any], Any], None]


class MemoryRecent:
    """Recent marks by user; `set_` and `pop` are the store's undoable writes."""

    def __init__(self, set_: Setter, pop: Popper) -> None:
        self.by_user: dict[str, tuple[Mark, ...]] = {}
        self._set = set_
        self._pop = pop
        self._writes = 0

    def prefetch(self, user_ids: Collection[str], now: datetime) -> None:
        """Everything is in memory already."""

    def marks(self, user_id: str, kind: str, since: datetime) -> Sequence[Mark]:
        return [m for m in self.by_user.get(user_id, ()) if m.kind == kind and m.at >= since]

    def add(self, mark: Mark) -> None:
        kept = tuple(m for m in self.by_user.get(mark.user_id, ()) if m.until > mark.at)
        self._set(self.by_user, mark.user_id, (*kept, mark))
        self._writes += 1
        if self._writes % SWEEP_EVERY == 0:
            self.prune(mark.at)

    def prune(self, now: datetime) -> int:
        """Drop every mark expired by `now`; returns how many went."""
        dropped = 0
        for user_id, marks in list(self.by_user.items()):
            kept = tuple(m for m in marks if m.until > now)
            if len(kept) == len(marks):
                continue
            dropped += len(marks) - len(kept)
            if kept:
                self._set(self.by_user, user_id, kept)
            else:
                self._pop(self.by_user, user_id)
        return dropped

    def forget(self, user_id: str) -> None:
        """An erasure: the user's marks (their events among them) go."""
        self._pop(self.by_user, user_id)
