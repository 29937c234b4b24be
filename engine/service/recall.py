"""What a batch reads and keeps of its users, as far as the loaded journeys need it
(`engine.steps.needs`, worked out by the `Catalog` on each load): their sends as far back as the
caps and journey limits count, their recent marks when a throttle or a look-back reads them,
and each event a look-back may take, kept once it was processed. With no journey asking, it
reads a week of sends and keeps nothing: the hot path stays as it was."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from channels import SentRecord
from engine.events import Event
from engine.ports import RecentTx, Tx, UsersTx
from engine.service.catalog import Catalog
from engine.state import EVENT_MARK, Mark


class Recall:
    """The users' reads and marks in one transaction, sized by what the catalog's journeys need."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def prefetch(self, tx: Tx, user_ids: Collection[str], now: datetime) -> None:
        """Load what this transaction will read of these users: their state and sends, and their
        recent marks when a journey reads them."""
        needs = self.catalog.needs
        tx.prefetch(user_ids, now - needs.sends_window)
        if needs.reads_marks:
            tx.recent.prefetch(user_ids, now)

    def sent(self, tx: UsersTx, user_id: str, now: datetime) -> Sequence[SentRecord]:
        """The user's sends the caps and the journeys' limits count."""
        return tx.recent_sends(user_id, now - self.catalog.needs.sends_window)

    def remember(self, tx: RecentTx, event: Event, now: datetime) -> None:
        """Keep the event for a later `wait_for` look-back, if one may take its type (after it was
        processed: it is not its own look-back)."""
        needs = self.catalog.needs
        if event.type in needs.lookback_types:
            tx.recent.add(Mark(event.user_id, EVENT_MARK, event.type, now, now + needs.keep_events, event.context()))
