"""The throttle step: at most `limit` instances of a journey per user (and key) pass it in any
`period`; the others take `on_throttled`, or end (`exited`, reason `throttled`).

Each pass is remembered as a mark of the user (`Mark`, kind `pass`) kept for the period, by the
store's recent marks: the count survives a restart and is the same on every worker.
"""

from __future__ import annotations

import json

from engine.errors import EvaluationError
from engine.model import Step, ThrottleStep, format_duration
from engine.state import PASS_MARK, STAY, Mark, Run

THROTTLED = "throttled"


def throttle_step(run: Run, step: Step) -> object:
    assert isinstance(step, ThrottleStep)
    try:
        name = pass_name(run.journey.id, step.id, _key(run, step))
    except EvaluationError as exc:
        run.finish("failed", f"step '{step.id}': key: {exc}")
        return STAY
    since = run.now - step.period
    passed = sum(1 for mark in run.recent.marks(run.user_id, PASS_MARK, since) if mark.name == name and mark.at > since)
    if passed >= step.limit:
        run.trace(step.id, THROTTLED, f"{passed} passed in {format_duration(step.period)} (limit {step.limit})")
        if step.on_throttled is None:
            run.finish("exited", THROTTLED)
            return STAY
        return step.on_throttled
    run.commands.append(Mark(run.user_id, PASS_MARK, name, run.now, run.now + step.period))
    return run.goto(step.next, step)


def pass_name(journey_id: str, step_id: str, key: str | None) -> str:
    """What a pass is remembered under: the journey, the step and the throttle's key."""
    return json.dumps([journey_id, step_id, key], separators=(",", ":"))


def _key(run: Run, step: ThrottleStep) -> str | None:
    expression = run.journey.expression(f"{step.id}.key")
    return None if expression is None else str(expression(run.context()))
