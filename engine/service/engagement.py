"""Each person's engagement per channel (channels/engagement.py), kept up to date from what the
engine already sees: its own sends, and the provider feedback and replies that come back as events.

A journey's message counts as sent on its channel when the engine sends it (a keyword reply is
no journey message and counts nothing). Feedback pinned to a message counts for that message's
channel, once per kind: `<channel>.delivered`, `<channel>.failed`, and the channel's engagement
events in the policy (`push.opened`, `email.clicked`, a tracked link's `sms.clicked`, an
`rcs.reply` that is no keyword); an inbound SMS that is no keyword is a reply, engagement with the
person's latest sms (else mms, else rcs).
A tracked link's click or an email's open pixel counts once per message like any engagement (its
`first` says the same of the message's hits), and never when it was a machine's (`machine: true`:
a mail proxy fetching the pixel, a link preview, a scanner). Engagement is counted at the local
hour of the event's time in the person's zone. A user with no stored profile has nothing to keep
it in: nothing is counted for them.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from channels import CHANNELS, Policy, Profile, recipient_zone
from channels.engagement import ChannelEngagement, Engagement
from engine.events import Event
from engine.ports import UsersTx
from engine.state import Outcome, Send

REPLY = "sms.inbound"
REPLIED_CHANNELS = ("sms", "mms", "rcs")  # a reply by SMS answers the latest of these, in this order


class Engagements:
    """The policy's engagement events and decay; the counts live in each user's stored profile."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.half_life = policy.fast.auto.half_life

    def on_event(self, tx: UsersTx, event: Event, profile: Profile, keyword: bool) -> Profile:
        """Count what `event` (pinned to its message) says; returns `profile` with the counts as
        they are now. `keyword`: the event is an inbound keyword (STOP, HELP), no reply."""
        found = self._feedback(tx, event, keyword)
        if found is None:
            return profile
        channel, kind, message_id = found
        stored = tx.get_profile(event.user_id)
        if stored is None:
            return profile
        hour = event.timestamp.astimezone(recipient_zone(stored, self.policy)).hour
        current = (stored.engagement or {}).get(channel) or ChannelEngagement()
        counted = current.after_feedback(message_id, kind, event.timestamp, hour, self.half_life)
        if counted is None:
            return profile
        engagement = _with(stored.engagement, channel, counted)
        tx.put_engagement(event.user_id, engagement)
        return replace(profile, engagement=engagement)

    def on_sends(self, tx: UsersTx, outcome: Outcome) -> None:
        """Count the journey messages an outcome sends."""
        for command in outcome.commands:
            if isinstance(command, Send) and command.instance_id is not None:
                self._sent(tx, command)

    def _sent(self, tx: UsersTx, send: Send) -> None:
        stored = tx.get_profile(send.user_id)
        if stored is None:
            return
        current = (stored.engagement or {}).get(send.channel) or ChannelEngagement()
        counted = current.after_send(send.message_id, send.at, self.half_life)
        tx.put_engagement(send.user_id, _with(stored.engagement, send.channel, counted))

    def _feedback(self, tx: UsersTx, event: Event, keyword: bool) -> tuple[str, str, str] | None:
        """(channel, kind, message_id) of what the event counts, None when it counts nothing."""
        if keyword or event.properties.get("machine") is True:  # a STOP or HELP is no reply; a machine's
            return None                                            # fetch of a tracked link, no person's
        channel, _, status = event.type.partition(".")
        if event.type == REPLY:
            return _reply(tx, event.user_id)
        if channel not in CHANNELS:
            return None
        message_id = event.properties.get("message_id")
        if message_id is None:
            return None
        if event.type in self.policy.engagement_events(channel):
            return channel, "engaged", str(message_id)
        if status in ("delivered", "failed"):
            return channel, status, str(message_id)
        return None


def _reply(tx: UsersTx, user_id: str) -> tuple[str, str, str] | None:
    for channel in REPLIED_CHANNELS:
        message_id = tx.latest_message(user_id, channel)
        if message_id is not None:
            return channel, "engaged", message_id
    return None


def _with(engagement: Engagement | None, channel: str, counts: ChannelEngagement) -> Engagement:
    return MappingProxyType({**(engagement or {}), channel: counts})

