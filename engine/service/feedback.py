"""Provider feedback, engagement and replies pinned to a message: `sms.delivered`, `push.opened`,
`rcs.reply`... name their message by id, or reach the user's latest message on that channel,
whose status they set (a reply's is `replied`)."""

from __future__ import annotations

from datetime import datetime

from channels import CHANNELS, Policy
from engine.events import FEEDBACK_STATUSES, REPLIES, Event
from engine.ports import UsersTx


class Feedback:
    """Which event types are feedback: a known status, a reply, or the policy's engagement events."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def pin(self, tx: UsersTx, event: Event, now: datetime) -> Event:
        """The event with its `message_id` (the status recorded on that message, unless a machine
        fetched the link or pixel: `machine: true` says the person did nothing); any other event as
        it came (`sms.go` is no feedback)."""
        channel, _, status = event.type.partition(".")
        status = REPLIES.get(event.type, status)
        if channel not in CHANNELS or (status not in FEEDBACK_STATUSES and event.type not in REPLIES and
                                       event.type not in self.policy.engagement_events(channel)):
            return event
        message_id = event.properties.get("message_id")
        if message_id is None:
            message_id = tx.latest_message(event.user_id, channel)
            if message_id is None:
                return event
            event = event.with_properties(message_id=message_id)
        if not event.properties.get("machine"):
            tx.set_message_status(event.user_id, str(message_id), status, now)
        return event
