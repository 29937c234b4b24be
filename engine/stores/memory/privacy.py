"""The memory store's side of the `Privacy` port: erasing a person, their consent ledger and the
audit trail of every user's consent changes.

An erasure is one transaction like any other here: each write records how to undo itself, so a
failure half-way leaves the person as they were.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from itertools import chain
from typing import Any

from channels import ConsentRecord
from engine.ports import Erasure, LedgerEntry, SuppressionEntry, Tx
from engine.stores.memory.base import MemoryBase
from engine.stores.privacy import ERASED, address_hash


class MemoryPrivacy(MemoryBase):
    """Erasure, the per-user ledger and the audit trail, over the state `MemoryBase` keeps. The
    salt of the address hashes is random per store (it lives as long as the data it hides)."""

    def __init__(self, keep_trace: bool = True) -> None:
        super().__init__(keep_trace)
        self.erasures: list[dict[str, Any]] = []  # the proof kept: who, when, the addresses' hashes
        self.salt = secrets.token_hex(16)

    def erase_user(self, user_id: str, at: datetime, end_instances: Callable[[Tx], None]) -> Erasure | None:
        with self.transaction():
            if not self._holds(user_id):
                return None
            end_instances(self)
            profile = self.profiles.get(user_id)
            self._append(self.erasures, {
                "user_id": user_id, "at": at,
                "phone_sha256": address_hash(self.salt, profile.phone if profile else None),
                "email_sha256": address_hash(self.salt, profile.email if profile else None)})
            self._pop(self.profiles, user_id)
            messages, cancelled = self._erase_messages(user_id, at)
            queued = sum(1 for e in self.inbox if e.user_id == user_id)
            self._reassign("inbox", deque(e for e in self.inbox if e.user_id != user_id))
            self._reassign("quarantined", [q for q in self.quarantined if q[0].user_id != user_id])
            self._reassign("skips", [replace(s, detail=None) if s.user_id == user_id else s for s in self.skips])
            self._reassign("traces", [t for t in self.traces if t.user_id != user_id])
            self.recent.forget(user_id)
            return Erasure(self._forget_instances(user_id), queued, messages, cancelled)

    def _holds(self, user_id: str) -> bool:
        """Anything at all under this id, the proof kept by an earlier erasure included."""
        return user_id in self.profiles or user_id in chain(
            (u for u, _ in self.ledger), (i.user_id for i in self.instances.values()),
            (d["send"].user_id for d in self.deliveries.values()), (e.user_id for e in self.inbox),
            (q[0].user_id for q in self.quarantined), (s.user_id for s in self.skips),
            (e["user_id"] for e in self.erasures))

    def _erase_messages(self, user_id: str, at: datetime) -> tuple[int, int]:
        """Content emptied and provider errors (they may quote the address) replaced; pending sends
        cancelled. A send being handed over right now is past stopping, but loses its content too."""
        erased = cancelled = 0
        for message_id, delivery in list(self.deliveries.items()):
            send = delivery["send"]
            if send.user_id != user_id:
                continue
            scrubbed = {**delivery, "send": replace(send, content={}),
                        "error": ERASED if delivery["error"] is not None else None}
            if delivery["dispatch"] == "pending":
                scrubbed.update(dispatch="cancelled", status="cancelled", status_at=at, error=ERASED)
                cancelled += 1
            self._set(self.deliveries, message_id, scrubbed)
            erased += 1
        self._reassign("messages", [replace(m, content={}) if m.user_id == user_id else m for m in self.messages])
        return erased, cancelled

    def _forget_instances(self, user_id: str) -> int:
        """Every instance of the user goes, and with it their entry history: they re-enter afresh."""
        mine = [i for i, instance in self.instances.items() if instance.user_id == user_id]
        for instance_id in mine:
            self._pop(self.instances, instance_id)
        self._pop(self._active, user_id)
        for key in [k for k in self._entries if k[1] == user_id]:
            self._pop(self._entries, key)
        return len(mine)

    def _reassign(self, name: str, value: Any) -> None:
        old = getattr(self, name)
        setattr(self, name, value)
        self._record(lambda: setattr(self, name, old))

    def consent_ledger(self, user_id: str) -> list[ConsentRecord]:
        with self._lock:
            return [record for owner, record in self.ledger if owner == user_id]

    def consent_feed(self, since: datetime | None, after: int, limit: int) -> list[LedgerEntry]:
        page: list[LedgerEntry] = []
        with self._lock:
            for index in range(max(after, 0), len(self.ledger)):
                if len(page) >= limit:
                    break
                user_id, record = self.ledger[index]
                if since is None or record.at >= since:
                    page.append(LedgerEntry(index + 1, user_id, record))
        return page

    def suppression_feed(self, since: datetime | None, after: int, limit: int) -> list[SuppressionEntry]:
        with self._lock:
            rows = [SuppressionEntry(n, number, keyword, source, at)
                    for n, (number, keyword, at, source) in enumerate(self.suppression_ledger, 1)
                    if n > after and (since is None or at >= since)]
        return rows[:limit]

    def suppressions_for(self, phone: str) -> list[dict[str, Any]]:
        with self._lock:
            return [{"number": n, "keyword": k, "at": at, "source": s}
                    for n, k, at, s in self.suppression_ledger if n == phone]
