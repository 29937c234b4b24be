"""Running state: journey instances and the commands the runtime asks the host to carry out.

Everything here is a frozen value with a JSON round-trip, because the server stores it
between stimuli and the tests restore it between every step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from channels import Decision
from engine.events import format_time, parse_time

ACTIVE = "active"
END_STATUSES = ("completed", "exited", "converted", "failed")


@dataclass(frozen=True, slots=True)
class TimerRef:
    """The one timer an instance may be waiting on; kinds: wait, timeout, escalate, defer."""

    timer_id: str
    due: datetime
    kind: str

    def to_dict(self) -> dict[str, Any]:
        return {"timer_id": self.timer_id, "due": format_time(self.due), "kind": self.kind}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TimerRef:
        return cls(data["timer_id"], parse_time(data["due"], "due"), data["kind"])


@dataclass(frozen=True, slots=True)
class Escalation:
    """An escalate send in progress: the message awaiting engagement and the channels left."""

    remaining: tuple[str, ...]
    after: timedelta
    message_id: str | None = None
    channel: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"remaining": list(self.remaining), "after": self.after.total_seconds(),
                "message_id": self.message_id, "channel": self.channel}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Escalation:
        return cls(tuple(data["remaining"]), timedelta(seconds=data["after"]), data["message_id"], data["channel"])


@dataclass(frozen=True, slots=True)
class Instance:
    """One person's run through one version of one journey."""

    instance_id: str
    journey_id: str
    version: str
    user_id: str
    key: str | None
    entered_at: datetime
    event: Mapping[str, Any]
    status: str = ACTIVE
    step: str | None = None
    path: tuple[str, ...] = ()
    timer: TimerRef | None = None
    escalation: Escalation | None = None
    seq: int = 0
    reason: str | None = None
    ended_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id, "journey_id": self.journey_id, "version": self.version,
            "user_id": self.user_id, "key": self.key, "entered_at": format_time(self.entered_at),
            "event": dict(self.event), "status": self.status, "step": self.step, "path": list(self.path),
            "timer": self.timer.to_dict() if self.timer else None,
            "escalation": self.escalation.to_dict() if self.escalation else None,
            "seq": self.seq, "reason": self.reason,
            "ended_at": format_time(self.ended_at) if self.ended_at else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Instance:
        return cls(
            data["instance_id"], data["journey_id"], data["version"], data["user_id"], data["key"],
            parse_time(data["entered_at"], "entered_at"), data["event"], data["status"], data["step"],
            tuple(data["path"]), TimerRef.from_dict(data["timer"]) if data["timer"] else None,
            Escalation.from_dict(data["escalation"]) if data["escalation"] else None,
            data["seq"], data["reason"],
            parse_time(data["ended_at"], "ended_at") if data["ended_at"] else None,
        )


@dataclass(frozen=True, slots=True)
class Send:
    """Command: deliver one rendered message on one channel."""

    message_id: str
    instance_id: str | None
    journey_id: str | None
    user_id: str
    step: str | None
    message: str
    channel: str
    category: str
    content: Mapping[str, Any]
    cost: float
    encoding: str | None
    segments: int | None
    decisions: tuple[Decision, ...]
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        """The SPEC §4 message shape."""
        return {
            "user_id": self.user_id, "at": format_time(self.at), "step": self.step, "channel": self.channel,
            "message": self.message, "content": dict(self.content), "encoding": self.encoding,
            "segments": self.segments, "cost": self.cost, "decisions": [d.to_dict() for d in self.decisions],
        }


@dataclass(frozen=True, slots=True)
class Skip:
    """Record: a send step that sent nothing, with the decisions that explain why."""

    instance_id: str
    user_id: str
    step: str
    message: str
    reason: str
    decisions: tuple[Decision, ...]
    at: datetime
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {"user_id": self.user_id, "at": format_time(self.at), "step": self.step, "message": self.message,
                "reason": self.reason, "decisions": [d.to_dict() for d in self.decisions]}
        if self.detail:
            data["detail"] = self.detail
        return data


@dataclass(frozen=True, slots=True)
class Schedule:
    """Command: fire `timer` for `instance_id` at its due time."""

    instance_id: str
    user_id: str
    timer: TimerRef


@dataclass(frozen=True, slots=True)
class Cancel:
    """Command: the timer will not be needed (the instance moved on or ended)."""

    timer_id: str


@dataclass(frozen=True, slots=True)
class Trace:
    """Record: one step of the explanation shown by the timeline."""

    at: datetime
    user_id: str
    instance_id: str | None
    step: str | None
    action: str
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {"at": format_time(self.at), "user_id": self.user_id, "step": self.step, "action": self.action}
        if self.detail:
            data["detail"] = self.detail
        return data


Command = Send | Skip | Schedule | Cancel | Trace


@dataclass(slots=True)
class Outcome:
    """What one stimulus did: the instance's new state and what the host must carry out."""

    instance: Instance | None
    commands: list[Command] = field(default_factory=list)
