"""Permanent provider failures come back in: each becomes a `<channel>.failed` event (so an
escalation moves on at once), and an address the provider says is never deliverable is cleared
from the profile (the event keeps the reason)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

from channels.selection import ADDRESS_FIELD
from engine.clock import Clock
from engine.errors import EventError
from engine.events import Event, parse_event
from engine.ports import Store
from engine.state import Ingested

log = logging.getLogger("journey.server")


class ProviderFailures:
    """The dispatcher's `on_failed`: the failures of one drain, taken in by `ingest`."""

    def __init__(self, store: Store, lock: AbstractContextManager[Any], clock: Clock,
                 ingest: Callable[[Sequence[Event]], list[Ingested]]) -> None:
        self.store = store
        self.lock = lock
        self.clock = clock
        self.ingest = ingest

    def __call__(self, events: list[dict[str, Any]]) -> None:
        now = self.clock.now()
        parsed = []
        for data in events:
            if data["properties"].get("unusable_address"):
                self.forget_address(data["user_id"], data["type"].partition(".")[0], data["properties"].get("address"))
            try:
                parsed.append(parse_event(data, now))
            except EventError:
                log.exception("could not turn a provider failure into an event: %s", data)
        if parsed:
            self.ingest(parsed)

    def forget_address(self, user_id: str, channel: str, address: str | None) -> bool:
        """A provider said `address` is never deliverable: clear it from the profile (the
        `<channel>.failed` event keeps the reason). Only if the profile still has that address."""
        field = ADDRESS_FIELD.get(channel)
        with self.lock, self.store.transaction() as tx:
            profile = tx.get_profile(user_id)
            if field is None or profile is None or getattr(profile, field) in (None, "") or \
                    (address is not None and getattr(profile, field) != address):
                return False
            cleared: dict[str, Any] = {field: None}
            tx.put_profile(replace(profile, **cleared))
        log.warning("cleared the %s of user %s: the provider reports it undeliverable", field, user_id)
        return True
