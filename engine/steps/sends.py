"""What a send step knows before it chooses channels: whether it is too late (`expires`,
`expires_after`: skipped, reason `expired`) and whether its journey has sent the user all it may
(`limits`: every channel `journey_cap`); and which reason a send that sent nothing is recorded with.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.errors import EvaluationError, EventError
from engine.events import format_time, parse_time
from engine.model import SendStep
from engine.state import Run, Skip

EXPIRED = "expired"
# The reason of a send that sent nothing, by the reasons of its candidates: the first that any
# candidate gives (a cap closed a channel that would otherwise have gone), else no_eligible_channel.
_CAPS = ("journey_cap", "global_cap")


def begin_send(run: Run, step: SendStep) -> bool:
    """On entering a send step: its expiry, as of now. False (the instance failed) when `expires`
    cannot be read: as for a `wait until`, the author hears of it rather than a guess being made."""
    run.expires_at = None
    if step.expires_after is not None:
        run.expires_at = run.now + step.expires_after
    elif step.expires is not None:
        expression = run.journey.expression(f"{step.id}.expires")
        assert expression is not None
        try:
            run.expires_at = parse_time(expression(run.context()), f"expires ({step.expires})")
        except (EvaluationError, EventError) as exc:
            run.finish("failed", f"step '{step.id}': {exc}")
            return False
    return True


def expired(run: Run, step: SendStep) -> bool:
    """True, and the skip recorded, when the send's moment has passed: nothing is sent."""
    if run.expires_at is None or run.now < run.expires_at:
        return False
    detail = f"expired at {format_time(run.expires_at)}"
    run.commands.append(Skip(run.instance_id, run.user_id, step.id, step.message, EXPIRED, (), run.now, detail))
    run.trace(step.id, "skip", EXPIRED)
    run.escalation = None
    return True


def journey_capped(run: Run) -> bool:
    """Whether the journey's `limits` forbid one more message to this user now."""
    limits = run.journey.definition.limits
    if limits is None:
        return False
    since = run.now - limits.per
    journey_id = run.journey.id
    return sum(1 for s in run.sent if s.journey == journey_id and s.at > since) >= limits.messages


def skip_reason(reasons: Iterable[str | None]) -> str:
    """`template_error` when every candidate failed its template; a cap's reason when a cap closed a
    channel (journey first, then the policy's across channels); else `no_eligible_channel`."""
    found = set(reasons)
    if found == {"template_error"}:
        return "template_error"
    return next((cap for cap in _CAPS if cap in found), "no_eligible_channel")
