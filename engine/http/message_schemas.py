"""The answers of the message and instance routes (engine/http/messages.py, built by
engine/http/views.py): documented, not validated (see `engine.http.schemas`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class Decision(_Out):
    channel: str
    eligible: bool
    reason: str | None = None
    fallback: str | None = Field(None, description="rcs `not_capable`: the channel it fell back to (mms, sms)")
    capability: Literal["known", "assumed"] | None = Field(
        None, description="rcs: `known` when a provider answered whether the phone takes RCS (cached on the "
        "profile), `assumed` when the profile's rcs_capable alone decided")
    capability_source: str | None = Field(None, description="rcs, when known: the provider that answered")
    reach: float | None = Field(None, description="strategy auto: the chance the person engages on this channel")
    cost: float | None = Field(None, description="strategy auto: the message's cost on it")
    score: float | None = Field(None, description="strategy auto: what it was ranked by (reach; reach per unit of "
                                "cost at urgency normal; cost at urgency low)")


class Choice(_Out):
    """strategy auto: the channels in the order chosen and why, in one line."""

    strategy: str
    order: list[str]
    reason: str = Field(description='e.g. "sms first: reach 0.90 at 0.0083 beats push 0.05 at 0.0001 for urgency '
                        'high"')


class _Send(_Out):
    """What a message and a skipped send both record: whose, which step and message, when, and why."""

    user_id: str
    instance_id: str | None = None
    step: str | None = None
    message: str | None = None
    decisions: list[Decision] | None = None
    at: str | None = None


class TrackedLink(_Out):
    """A tracked link of a message (policy `links`), or its open pixel (`url` null), with its hits."""

    url: str | None = Field(description="where the short link leads; null: the email's open pixel")
    hits: int = Field(description="every click (or load of the pixel), machines' included")
    machine_hits: int = Field(description="of those, by a machine: a mail proxy, a link preview, a scanner")
    first_hit_at: str | None = None
    last_hit_at: str | None = None


class Message(_Send):
    """A message with its decisions and delivery status; `content` is null once its person is erased."""

    message_id: str
    journey_id: str | None = None
    channel: str
    category: str | None = None
    content: dict[str, Any] | None = None
    cost: float | None = None
    encoding: str | None = None
    segments: int | None = None
    locale: str | None = Field(None, description="the message's variant it was rendered from (`fr`, for a reader in "
                               "`fr-CA` when the message has no `fr-CA`); null: its default content")
    status: str | None = Field(None, description="where the message is, as last known: queued, sent, then the "
                               "provider's feedback (delivered, opened, read, clicked, failed), replied (an "
                               "rcs.reply), or cancelled, unknown")
    status_at: str | None = None
    dispatch: str | None = Field(None, description="the outbox's hand-over to a provider: pending, sending, sent, "
                                 "failed, cancelled, unknown (`sent`: a provider took it; `status` says what followed)")
    next_attempt_at: str | None = Field(None, description="while `pending`: when it is tried next (quiet hours, a "
                                        "retry, a send rate's turn)")
    attempts: int | None = None
    provider: str | None = None
    provider_id: str | None = None
    error: str | None = None
    choice: Choice | None = Field(None, description="strategy auto's order and reason; null for other strategies")
    links: list[TrackedLink] | None = Field(None, description="its tracked links and open pixel, in their order in "
                                            "the message (their codes are not shown: a code records hits)")


class SkippedSend(_Send):
    """A send step that sent nothing (`no_eligible_channel`, `template_error`), with its decisions."""

    reason: str
    detail: str | None = None


class DeferredSend(_Send):
    """A send put off by quiet hours: not a message yet, decided again (consent, caps) at `next_attempt_at`."""

    journey_id: str
    version: str
    status: Literal["deferred"]
    reason: str = Field(description="`quiet hours`")
    next_attempt_at: str


class MessageList(_Out):
    messages: list[Message] = Field(description="newest first, at most 200")
    deferred: list[DeferredSend] = Field(description="sends put off by quiet hours, from the instances that wait")
    skipped: list[SkippedSend]


class Timer(_Out):
    kind: Literal["wait", "timeout", "escalate", "defer", "digest"]
    due_at: str
    reason: str = Field(description="a wait step, an event's timeout, an escalation's next channel, quiet hours, "
                        "a digest's window")


class DigestView(_Out):
    step: str
    count: int = Field(description="the events it holds")
    first_at: str = Field(description="the first event's timestamp")
    last_at: str = Field(description="the latest event's timestamp")


class InstanceView(_Out):
    instance_id: str
    journey_id: str
    version: str
    key: str | None = None
    status: str = Field(description="active, completed, exited, converted or failed")
    step: str | None = None
    path: list[str]
    entered_at: str
    ended_at: str | None = None
    reason: str | None = None
    timer: Timer | None = Field(None, description="while it waits on a timer: which, until when, and why")
    digest: DigestView | None = Field(None, description="after a digest step (left out before one): what it "
                                      "collected, still collecting while the timer's kind is digest")


class InstanceList(_Out):
    instances: list[InstanceView]


class FeedItem(_Out):
    """One in-app message of a person's feed."""

    message_id: str
    title: str | None
    body: str | None
    at: str = Field(description="when it was sent")
    seen_at: str | None
    read_at: str | None
    archived_at: str | None
    journey_id: str | None
    message: str = Field(description="the journey's message it was rendered from")
    locale: str | None = Field(description="the message's variant; null: its default content")
    content: dict[str, Any]


class Feed(_Out):
    """A page of a person's feed, newest first."""

    items: list[FeedItem]
    unread_count: int = Field(description="messages neither read nor archived, in the whole feed")
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: the last page")


class FeedMarked(FeedItem):
    unread_count: int


class MarkedAll(_Out):
    marked: int = Field(description="messages that had not been marked so before")
    unread_count: int


class UserKey(_Out):
    user_id: str
    key: str = Field(description="opens this user's feed and preferences only: `Authorization: Bearer <key>`")


class PreferencesOut(_Out):
    """A person's preferences: what is not said is on."""

    categories: dict[str, dict[str, bool]] = Field(description="per category, each channel on or off")
    journeys: dict[str, bool] = Field(description="per journey id, on or off")


class MessagePage(_Out):
    """Every user's messages that match the filters, newest first, a page at a time."""

    messages: list[Message]
    next_cursor: str | None = Field(description="pass it back as `cursor` for the next page; null: no more")


class TimelineItem(_Out):
    at: str
    kind: Literal["event", "decision", "message", "receipt", "timer", "instance"]
    journey: str | None
    step: str | None


class Timeline(_Out):
    """One person's events, decisions (each candidate with its reason, reach and cost), messages,
    receipts, timers and instances, oldest first."""

    user_id: str
    items: list[TimelineItem]
