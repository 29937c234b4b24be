"""The digest step: the journey's trigger events of one key, collected into one message.

The digest opens with the event the instance is on (the one that entered it), collects every
later trigger event of the user with the same key while its window is open, and goes on when the
window closes (or as soon as it holds `count` events). What it collected is the instance's own
state (`Instance.digest`), saved with it: a digest in progress survives a restart and a redeploy,
on the version it entered. The next steps' templates read it as `digest`.
"""

from __future__ import annotations

from datetime import datetime

from channels import next_local_time, recipient_zone
from engine.errors import EvaluationError
from engine.events import Event
from engine.model import DigestStep, Step
from engine.state import STAY, Digest, Run


def digest_step(run: Run, step: Step) -> object:
    """Open a digest with the instance's event; it closes at its window's end (or its count)."""
    assert isinstance(step, DigestStep)
    try:
        key = _key(run, step, run.event)
    except EvaluationError as exc:
        run.finish("failed", f"step '{step.id}': key: {exc}")
        return STAY
    run.digest = Digest.open(step.id, key, run.event, run.now)
    if step.count is not None and step.count <= 1:
        return _close(run, step)
    run.schedule("digest", _closes_at(run, step))
    return STAY


def collect(run: Run, step: DigestStep, event: Event) -> bool:
    """Add `event` to the open digest if it is one of the journey's trigger events with the
    digest's key; True when it was taken (and the digest closed if it reached its count)."""
    digest = run.digest
    if digest is None or digest.closed_at is not None or run.timer is None or not _is_trigger(run, event):
        return False
    context = event.context()
    try:
        if _key(run, step, context) != digest.key:
            return False
    except EvaluationError as exc:
        run.trace(step.id, "condition_error", str(exc))
        return False
    run.digest = digest.add(context)
    run.collected = True
    run.trace(step.id, "collected", event.type)
    if step.count is not None and run.digest.count >= step.count:
        run.cancel_timer()
        run.proceed(_close(run, step))
    return True


def on_digest_timer(run: Run) -> None:
    """The window closed: go on with what was collected."""
    step = run.journey.step(run.step or "")
    assert isinstance(step, DigestStep)
    run.proceed(_close(run, step))


def _close(run: Run, step: DigestStep) -> object:
    digest = run.digest
    assert digest is not None
    run.digest = Digest(digest.step, digest.key, digest.opened_at, digest.events, digest.count, digest.last, run.now)
    run.trace(step.id, "closed", f"{digest.count} event{'' if digest.count == 1 else 's'}")
    return run.goto(step.next, step)


def _closes_at(run: Run, step: DigestStep) -> datetime:
    ends = []
    if step.window is not None:
        ends.append(run.now + step.window)
    if step.until is not None:
        ends.append(next_local_time(run.now, recipient_zone(run.profile, run.policy), step.until))
    return min(ends)


def _is_trigger(run: Run, event: Event) -> bool:
    """Whether `event` would start this journey: its trigger's type, and its `when` holds."""
    trigger = run.journey.definition.trigger
    if event.type != trigger.event:
        return False
    when = run.journey.expression("trigger.when")
    if when is None:
        return True
    try:
        return bool(when({**run.context(), "event": event.context()}))
    except EvaluationError:
        return False


def _key(run: Run, step: DigestStep, event: object) -> str | None:
    expression = run.journey.expression(f"{step.id}.key")
    if expression is None:
        return None
    return str(expression({**run.context(), "event": event}))
