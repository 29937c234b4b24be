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


class _Send(_Out):
    """What a message and a skipped send both record: whose, which step and message, when, and why."""

    user_id: str
    instance_id: str | None = None
    step: str | None = None
    message: str | None = None
    decisions: list[Decision] | None = None
    at: str | None = None


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
    kind: Literal["wait", "timeout", "escalate", "defer"]
    due_at: str
    reason: str = Field(description="a wait step, an event's timeout, an escalation's next channel, quiet hours")


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


class InstanceList(_Out):
    instances: list[InstanceView]
