"""`wait` and `wait_for`: how long to wait, what to do when the time has already passed, and
which event ends a wait (the first of several, or one that came a little before the wait began).

A calendar offset moves the recipient's wall clock (`{days: -1}` is the same local time the day
before, whatever a daylight-saving change does to the hours in between); a plain one (`-24h`)
moves the instant. A look-back reads the user's recent events, kept by the store for the longest
look-back any journey asks for (`engine.steps.needs`); an event counts once for an instance: a
wait_for takes only events that arrived after the one the instance took last.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from channels import best_time, next_local_time, recipient_zone
from channels.engagement import best_hours
from engine.errors import EvaluationError, EventError
from engine.events import Event, format_time, parse_time
from engine.model import BEST_TIME, HHMM, Step, WaitForStep, WaitStep
from engine.state import EVENT_MARK, STAY, Mark, Run

EXPIRED = "expired"


def wait_step(run: Run, step: Step) -> object:
    assert isinstance(step, WaitStep)
    try:
        due = wait_due(run, step)
    except (EvaluationError, EventError) as exc:
        run.finish("failed", f"step '{step.id}': {exc}")
        return STAY
    if due < run.now and step.if_past != "go":
        run.trace(step.id, "past", f"{format_time(due)} has passed")
        if step.if_past == "exit":
            run.finish("exited", EXPIRED)
            return STAY
        return step.if_past
    if due <= run.now:
        return run.goto(step.next, step)
    run.schedule("wait", due)
    return STAY


def wait_due(run: Run, step: WaitStep) -> datetime:
    if step.duration is not None:
        return run.now + step.duration
    assert step.until is not None
    zone = recipient_zone(run.profile, run.policy)
    if HHMM.match(step.until):
        return next_local_time(run.now, zone, step.until)
    if step.until == BEST_TIME:
        return best_time(run.now, zone, best_hours(run.profile.engagement), step.best_time_within(),
                         run.policy.fast.auto.best_time)
    expression = run.journey.expression(f"{step.id}.until")
    assert expression is not None
    due = parse_time(expression(run.context()), f"until ({step.until})")
    return on_wall_clock(due, step, zone) if step.on_calendar else due + step.offset_delta()


def on_wall_clock(instant: datetime, step: WaitStep, zone: ZoneInfo) -> datetime:
    """`instant` moved by the step's offset on the wall clock of `zone`: the same local time
    `days` later or earlier, across daylight-saving changes (a local time the clocks skip is
    read with the offset before the jump)."""
    local = instant.astimezone(zone).replace(tzinfo=None) + step.offset_delta()
    return local.replace(tzinfo=zone).astimezone(UTC)


def wait_for_step(run: Run, step: Step) -> object:
    assert isinstance(step, WaitForStep)
    if step.lookback is not None:
        taken = _looked_back(run, step)
        if taken is not None:
            return _take(run, step, taken.data or {}, taken.at, "lookback")
    run.schedule("timeout", run.now + step.timeout)
    return STAY


def resume(run: Run, step: WaitForStep, event: Event) -> None:
    """An event while the step waits: one of its types that passes `when` ends the wait."""
    if event.type not in step.event_types() or run.timer is None:
        return
    context = event.context()
    if _matches(run, step, context):
        run.cancel_timer()
        run.proceed(_take(run, step, context, run.now, "event"))


def _take(run: Run, step: WaitForStep, event: Mapping[str, Any], arrived: datetime, how: str) -> object:
    run.event = event
    run.taken_at = arrived
    event_type = str(event.get("type"))
    run.trace(step.id, how, event_type)
    return run.goto(step.target(event_type), step)


def _looked_back(run: Run, step: WaitForStep) -> Mark | None:
    """The earliest event of the step's types that arrived within `lookback` before now, passing
    `when`: after the last one this instance took, and never the event that entered it."""
    assert step.lookback is not None
    types = step.event_types()
    for mark in run.recent.marks(run.user_id, EVENT_MARK, run.now - step.lookback):
        if mark.name in types and mark.at <= run.now and _not_taken(run, mark) and _matches(run, step, mark.data or {}):
            return mark
    return None


def _not_taken(run: Run, mark: Mark) -> bool:
    if run.taken_at is not None:
        return mark.at > run.taken_at
    return mark.data != run.event  # until a wait_for takes one, `event` is the one that entered


def _matches(run: Run, step: WaitForStep, event: Mapping[str, Any]) -> bool:
    expression = run.journey.expression(f"{step.id}.when")
    if expression is None:
        return True
    try:
        return bool(expression({**run.context(), "event": event}))
    except EvaluationError as exc:
        run.trace(step.id, "condition_error", str(exc))
        return False
