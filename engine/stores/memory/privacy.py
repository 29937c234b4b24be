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
from engine.ports import ERASED, Erasure, LedgerEntry, SuppressionEntry, Tx
from engine.stores.memory.data import MemoryData, OnData
from engine.stores.memory.feed import erase_feed
from engine.stores.memory.tx import MemoryTx
from engine.stores.privacy import address_hash


class MemoryPrivacy(OnData):
    """Erasure (what the person did to their feed too), the per-user ledger and the audit trail,
    over the store's data. The salt of the address hashes is random per store (it lives as long as
    the data it hides)."""

    def __init__(self, data: MemoryData, tx: MemoryTx) -> None:
        super().__init__(data)
        self.tx = tx
        self.salt = secrets.token_hex(16)

    def erase_user(self, user_id: str, at: datetime, end_instances: Callable[[Tx], None]) -> Erasure | None:
        data = self.data
        with data.transaction():
            if not self._holds(user_id):
                return None
            end_instances(self.tx)
            profile = data.profiles.get(user_id)
            data.append(data.erasures, {
                "user_id": user_id, "at": at,
                "phone_sha256": address_hash(self.salt, profile.phone if profile else None),
                "email_sha256": address_hash(self.salt, profile.email if profile else None)})
            data.pop(data.profiles, user_id)
            erase_feed(data, user_id)
            messages, cancelled = self._erase_messages(user_id, at)
            queued = sum(1 for e in data.inbox if e.user_id == user_id)
            data.reassign("inbox", deque(e for e in data.inbox if e.user_id != user_id))
            data.reassign("quarantined", [q for q in data.quarantined if q[0].user_id != user_id])
            data.reassign("skips", [replace(s, detail=None) if s.user_id == user_id else s for s in data.skips])
            data.reassign("traces", [t for t in data.traces if t.user_id != user_id])
            data.reassign("links", {c: r for c, r in data.links.items() if r["user_id"] != user_id})  # codes: 404
            data.recent.forget(user_id)
            return Erasure(self._forget_instances(user_id), queued, messages, cancelled)

    def _holds(self, user_id: str) -> bool:
        """Anything at all under this id, the proof kept by an earlier erasure included."""
        data = self.data
        return user_id in data.profiles or user_id in chain(
            (u for u, _ in data.ledger), (i.user_id for i in data.instances.values()),
            (d["send"].user_id for d in data.deliveries.values()), (e.user_id for e in data.inbox),
            (q[0].user_id for q in data.quarantined), (s.user_id for s in data.skips),
            (e["user_id"] for e in data.erasures))

    def _erase_messages(self, user_id: str, at: datetime) -> tuple[int, int]:
        """Content emptied and provider errors (they may quote the address) replaced; pending sends
        cancelled. A send being handed over right now is past stopping, but loses its content too."""
        data = self.data
        erased = cancelled = 0
        for message_id, delivery in list(data.deliveries.items()):
            send = delivery["send"]
            if send.user_id != user_id:
                continue
            scrubbed = {**delivery, "send": replace(send, content={}),
                        "error": ERASED if delivery["error"] is not None else None}
            if delivery["dispatch"] == "pending":
                data.received(delivery, "cancelled")
                scrubbed.update(dispatch="cancelled", status="cancelled", status_at=at, error=ERASED)
                cancelled += 1
            data.set(data.deliveries, message_id, scrubbed)
            erased += 1
        data.reassign("messages", [replace(m, content={}) if m.user_id == user_id else m for m in data.messages])
        return erased, cancelled

    def _forget_instances(self, user_id: str) -> int:
        """Every instance of the user goes, and with it their entry history: they re-enter afresh."""
        data = self.data
        mine = [i for i, instance in data.instances.items() if instance.user_id == user_id]
        for instance_id in mine:
            data.pop(data.instances, instance_id)
        data.pop(data.active, user_id)
        for key in [k for k in data.entries if k[1] == user_id]:
            data.pop(data.entries, key)
        return len(mine)

    def consent_ledger(self, user_id: str) -> list[ConsentRecord]:
        with self.data.lock:
            return [record for owner, record in self.data.ledger if owner == user_id]

    def consent_feed(self, since: datetime | None, after: int, limit: int) -> list[LedgerEntry]:
        page: list[LedgerEntry] = []
        with self.data.lock:
            for index in range(max(after, 0), len(self.data.ledger)):
                if len(page) >= limit:
                    break
                user_id, record = self.data.ledger[index]
                if since is None or record.at >= since:
                    page.append(LedgerEntry(index + 1, user_id, record))
        return page

    def suppression_feed(self, since: datetime | None, after: int, limit: int) -> list[SuppressionEntry]:
        with self.data.lock:
            rows = [SuppressionEntry(n, number, keyword, source, at)
                    for n, (number, keyword, at, source) in enumerate(self.data.suppression_ledger, 1)
                    if n > after and (since is None or at >= since)]
        return rows[:limit]

    def suppressions_for(self, phone: str) -> list[dict[str, Any]]:
        with self.data.lock:
            return [{"number": n, "keyword": k, "at": at, "source": s}
                    for n, k, at, s in self.data.suppression_ledger if n == phone]
