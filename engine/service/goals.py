"""Conversions after the end: a journey's goal reached within `goal.within` of entry counts once,
even when its instance had already ended (completed, exited, failed) by then.

An instance that ends short of its goal while its `within` still runs leaves a goal mark (the
runtime's `Run.finish`: the instance, the goal event, where its counters are), kept until the
`within` runs out; the first goal event of that type before then counts one conversion and leaves
a converted mark, so a second purchase counts nothing more. The marks are the users' recent marks
(engine.ports.Recent), read with the batch only when a loaded journey has a goal with `within`.
"""

from __future__ import annotations

from datetime import datetime

from engine.events import Event
from engine.ports import Tx
from engine.service.catalog import Catalog
from engine.state import CONVERTED_MARK, GOAL_MARK, Mark
from engine.stats import conversion_counts


class Goals:
    """Counts a goal event once for each ended instance of the user it may still convert."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def on_event(self, tx: Tx, event: Event, now: datetime) -> None:
        needs = self.catalog.needs
        if event.type not in needs.goal_events:
            return
        since = now - needs.keep_goals
        counted = {m.name for m in tx.recent.marks(event.user_id, CONVERTED_MARK, since)}
        for mark in tx.recent.marks(event.user_id, GOAL_MARK, since):
            data = mark.data or {}
            instance_id = str(data.get("instance_id"))
            if data.get("event") != event.type or now > mark.until or instance_id in counted:
                continue
            tx.count(conversion_counts(mark.name, str(data.get("tally"))))
            tx.recent.add(Mark(event.user_id, CONVERTED_MARK, instance_id, now, mark.until))
            counted.add(instance_id)
