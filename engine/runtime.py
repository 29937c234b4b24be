"""The pure evaluator: (instance, stimulus, now) -> new instance + commands.

It never sends, sleeps, saves or reads a clock. The simulator and the server both
call it and carry out the commands it returns, which is what makes a dry run behave
exactly like production.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from channels import (
    Decision,
    Delivery,
    Policy,
    Profile,
    SendRequest,
    SentRecord,
    next_local_time,
    recipient_zone,
)
from channels.selection import select_rendering, strategy_of
from engine.compiler import CompiledJourney
from engine.errors import EvaluationError, EventError
from engine.events import Event, format_time, parse_time
from engine.model import HHMM, BranchStep, SendStep, SplitStep, Step, WaitForStep, WaitStep
from engine.ports import EntryHistory
from engine.runs import RUN_EVENT
from engine.state import (
    END_OF_STEPS,
    STAY,
    Cancel,
    Command,
    Escalation,
    Instance,
    Outcome,
    Run,
    Send,
    Skip,
    Trace,
    journey_context,
    profile_context,
)


class Runtime:
    """Advances instances; holds only the policy, which is fixed for its lifetime."""

    def __init__(self, policy: Policy, trace: bool = True) -> None:
        self.policy = policy
        self.tracing = trace

    def entry_key(self, journey: CompiledJourney, event: Event, profile: Profile) -> tuple[bool, str | None, str]:
        """Does this event start the journey for this user, and under which instance key?"""
        if event.type != (journey.definition.trigger.event or RUN_EVENT):  # an audience run enters by its own event
            return False, None, "not_trigger"
        when = journey.expression("trigger.when") or journey.expression("trigger.audience")
        key_expr = journey.expression("instance_key")
        if when is None and key_expr is None:
            return True, None, "ok"
        context = _context(journey, event.context(), profile)
        try:
            if when is not None and not when(context):
                return False, None, "trigger_condition_false"
            key = None if key_expr is None else str(key_expr(context))
        except EvaluationError as exc:
            return False, None, f"trigger_error: {exc}"
        return True, key, "ok"

    def may_reenter(self, journey: CompiledJourney, history: EntryHistory | None, now: datetime) -> bool:
        """re_entry: always (none active), never (never before), after D (none active, D since last)."""
        if history is None or history.last_entered_at is None:
            return True
        if history.active or journey.definition.re_entry == "never":
            return False
        after = journey.definition.re_entry_after()
        return after is None or now - history.last_entered_at >= after

    def enter(self, journey: CompiledJourney, event: Event, profile: Profile, key: str | None,
              instance_id: str, sent: Sequence[SentRecord], now: datetime) -> Outcome:
        instance = Instance(instance_id=instance_id, journey_id=journey.id, version=journey.version,
                            user_id=profile.user_id, key=key, entered_at=now, event=event.context())
        run = Run(self.policy, self.tracing, journey, instance, profile, sent, now, _STEP_HANDLERS)
        run.trace(None, "enter", f"key={key}" if key is not None else None)
        run.advance(journey.first_step)
        return run.outcome()

    def on_event(self, instance: Instance, journey: CompiledJourney, event: Event, profile: Profile,
                 sent: Sequence[SentRecord], now: datetime) -> Outcome:
        """Goal, exit_on, wait_for and escalation feedback, in that order of precedence."""
        if not instance.active:
            return Outcome(instance)
        run = Run(self.policy, self.tracing, journey, instance, profile, sent, now, _STEP_HANDLERS)
        definition = journey.definition
        goal = definition.goal
        if goal and event.type == goal.event and (goal.within is None or now <= instance.entered_at + goal.within):
            run.finish("converted", f"goal {event.type}")
        elif event.type in definition.exit_on:
            run.finish("exited", f"exit_on {event.type}")
        else:
            _resume_on_event(run, event)
        return run.outcome()

    def end(self, instance: Instance, status: str, reason: str, now: datetime) -> Outcome:
        """End an instance from outside its journey (a failure, a stopped journey): its timer is
        cancelled and nothing more is sent. The journey itself is not needed, so this works for
        an instance whose version cannot be compiled."""
        commands: list[Command] = [Cancel(instance.timer.timer_id)] if instance.timer else []
        if self.tracing:
            commands.append(Trace(now, instance.user_id, instance.instance_id, instance.step, status, reason))
        ended = replace(instance, status=status, reason=reason, ended_at=now, timer=None, escalation=None)
        return Outcome(ended, commands)

    def on_timer(self, instance: Instance, journey: CompiledJourney, timer_id: str, profile: Profile,
                 sent: Sequence[SentRecord], now: datetime) -> Outcome:
        """A due timer; one the instance no longer waits on is ignored (it was superseded)."""
        if not instance.active or instance.timer is None or instance.timer.timer_id != timer_id:
            return Outcome(instance)
        run = Run(self.policy, self.tracing, journey, instance, profile, sent, now, _STEP_HANDLERS)
        kind = instance.timer.kind
        run.timer = None
        _TIMER_HANDLERS[kind](run)
        return run.outcome()


# --- step handlers: each returns the next step id, STAY or END_OF_STEPS -------------------------


def _send_step(run: Run, step: Step) -> object:
    assert isinstance(step, SendStep)
    run.escalation = None
    return _attempt_send(run, step)


def _wait_step(run: Run, step: Step) -> object:
    assert isinstance(step, WaitStep)
    try:
        due = _wait_due(run, step)
    except (EvaluationError, EventError) as exc:
        run.finish("failed", f"step '{step.id}': {exc}")
        return STAY
    if due <= run.now:
        return run.goto(step.next, step)
    run.schedule("wait", due)
    return STAY


def _wait_due(run: Run, step: WaitStep) -> datetime:
    if step.duration is not None:
        return run.now + step.duration
    assert step.until is not None
    if HHMM.match(step.until):
        return next_local_time(run.now, recipient_zone(run.profile, run.policy), step.until)
    expression = run.journey.expression(f"{step.id}.until")
    assert expression is not None
    due = parse_time(expression(run.context()), f"until ({step.until})")
    return due + (step.offset or timedelta(0))


def _wait_for_step(run: Run, step: Step) -> object:
    assert isinstance(step, WaitForStep)
    run.schedule("timeout", run.now + step.timeout)
    return STAY


def _branch_step(run: Run, step: Step) -> object:
    assert isinstance(step, BranchStep)
    context = run.context()
    for n, case in enumerate(step.branches):
        expression = run.journey.expression(f"{step.id}.branches.{n}")
        assert expression is not None
        try:
            matched = bool(expression(context))
        except EvaluationError as exc:
            run.trace(step.id, "condition_error", str(exc))
            matched = False
        if matched:
            return case.next
    return run.goto(step.default, step)


def _split_step(run: Run, step: Step) -> object:
    assert isinstance(step, SplitStep)
    digest = hashlib.sha256(f"{run.journey.id}:{step.id}:{run.user_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * sum(p.weight for p in step.paths)
    for path in step.paths:
        point -= path.weight
        if point < 0:
            return path.next
    return step.paths[-1].next


def _exit_step(run: Run, step: Step) -> object:
    return END_OF_STEPS


_STEP_HANDLERS: Mapping[str, Callable[[Run, Step], object]] = {
    "send": _send_step, "wait": _wait_step, "wait_for": _wait_for_step,
    "branch": _branch_step, "split": _split_step, "exit": _exit_step,
}


# --- sending -----------------------------------------------------------------------------


def _attempt_send(run: Run, step: SendStep) -> object:
    """Select channels now (consent, caps and quiet hours as of this instant) and send."""
    escalation = run.escalation
    message = run.journey.definition.messages[step.message]
    candidates = escalation.remaining if escalation else tuple(step.channels or message.channels())
    strategy = "first" if escalation else step.strategy

    def request(contents: dict[str, Any], errors: dict[str, str], later: frozenset[str]) -> SendRequest:
        return SendRequest(
            profile=run.profile, category=run.journey.definition.category, urgency=step.urgency,
            candidates=candidates, contents=contents, template_errors=errors, sent=run.sent, now=run.now,
            strategy=strategy, escalate_after=step.escalate_after, later=later)

    selection, errors = select_rendering(candidates, strategy_of(strategy, step.urgency), request,
                                         partial(_render, run, step.message), run.policy)
    if selection.deliveries and selection.defer_until is not None:
        run.schedule("defer", selection.defer_until, step.message)
        run.trace(step.id, "deferred", f"quiet hours until {format_time(selection.defer_until)}")
        return STAY
    if not selection.deliveries:
        return _nothing_sent(run, step, selection.decisions, errors, escalation is not None)
    if escalation is None and selection.strategy != "escalate":
        for delivery in selection.deliveries:
            _emit(run, step, delivery, selection.decisions)
        return run.goto(step.next, step)
    first = selection.deliveries[0]
    message_id = _emit(run, step, first, selection.decisions)
    # The chain is the channels eligible now; each is checked again when its turn comes.
    rest = _after(candidates, selection.decisions, first.channel) if escalation else selection.chain()
    if not rest:
        run.escalation = None
        return run.goto(step.next, step)
    after = escalation.after if escalation else (selection.escalate_after or timedelta(hours=2))
    run.escalation = Escalation(rest, after, message_id, first.channel)
    run.schedule("escalate", run.now + after)
    return STAY


def _render(run: Run, message: str, candidates: Sequence[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Render the candidates' content (and the rcs fallbacks'); a failing template is recorded."""
    wanted = (*candidates, "mms", "sms") if "rcs" in candidates else candidates
    return run.journey.render_channels(message, wanted, run.context())


def _nothing_sent(run: Run, step: SendStep, decisions: tuple[Decision, ...], errors: Mapping[str, str],
                  escalating: bool) -> object:
    if escalating:
        run.trace(step.id, "escalation_exhausted", "no remaining channel is eligible")
        run.escalation = None
        return run.goto(step.next, step)
    reasons = {d.reason for d in decisions}
    reason = "template_error" if reasons == {"template_error"} else "no_eligible_channel"
    detail = "; ".join(f"{c}: {e}" for c, e in errors.items()) or None
    run.commands.append(Skip(run.instance_id, run.user_id, step.id, step.message, reason,
                             decisions, run.now, detail))
    run.trace(step.id, "skip", reason)
    return run.goto(step.next, step)


def _emit(run: Run, step: SendStep, delivery: Delivery, decisions: tuple[Decision, ...]) -> str:
    message_id = run.next_id("m")
    category = run.journey.definition.category
    run.commands.append(Send(
        message_id=message_id, instance_id=run.instance_id, journey_id=run.journey.id, user_id=run.user_id,
        step=step.id, message=step.message, channel=delivery.channel, category=category, content=delivery.content,
        cost=delivery.cost, encoding=delivery.encoding, segments=delivery.segments, decisions=decisions, at=run.now,
    ))
    run.sent.append(SentRecord(delivery.channel, category, run.now))
    run.trace(step.id, "sent", delivery.channel)
    return message_id


def _after(candidates: Sequence[str], decisions: Sequence[Decision], channel: str) -> tuple[str, ...]:
    """The candidates after the one that produced `channel` (itself, or an rcs falling back to it)."""
    for i, decision in enumerate(decisions):
        if decision.channel == channel or decision.fallback == channel:
            return tuple(c for c in candidates[i + 1:] if c != channel)
    return ()


# --- resuming ------------------------------------------------------------------------------


def _resume_on_event(run: Run, event: Event) -> None:
    step = run.journey.step(run.step) if run.step else None
    if isinstance(step, WaitForStep) and event.type in step.events and run.timer is not None:
        if _event_matches(run, step, event):
            run.cancel_timer()
            run.event = event.context()
            run.trace(step.id, "event", event.type)
            run.advance(_as_step(run.goto(step.on_event, step)))
        return
    escalation = run.escalation
    if isinstance(step, SendStep) and escalation and escalation.message_id == event.properties.get("message_id"):
        _escalation_feedback(run, step, escalation, event)


def _event_matches(run: Run, step: WaitForStep, event: Event) -> bool:
    expression = run.journey.expression(f"{step.id}.when")
    if expression is None:
        return True
    context = {**run.context(), "event": event.context()}
    try:
        return bool(expression(context))
    except EvaluationError as exc:
        run.trace(step.id, "condition_error", str(exc))
        return False


def _escalation_feedback(run: Run, step: SendStep, escalation: Escalation, event: Event) -> None:
    channel = escalation.channel or ""
    if event.type in run.policy.engagement_events(channel):
        run.cancel_timer()
        run.escalation = None
        run.trace(step.id, "engaged", event.type)
        run.advance(_as_step(run.goto(step.next, step)))
    elif event.type == f"{channel}.failed":
        run.cancel_timer()
        run.trace(step.id, "escalate", f"{channel} failed")
        _continue_send(run, step)


def _continue_send(run: Run, step: SendStep) -> None:
    result = _attempt_send(run, step)
    if result is not STAY:
        run.advance(_as_step(result))


def _as_step(target: object) -> str | None:
    return target if isinstance(target, str) else None


def _on_wait_timer(run: Run) -> None:
    step = run.journey.step(run.step or "")
    assert isinstance(step, WaitStep)
    run.advance(_as_step(run.goto(step.next, step)))


def _on_timeout_timer(run: Run) -> None:
    step = run.journey.step(run.step or "")
    assert isinstance(step, WaitForStep)
    run.trace(step.id, "timeout")
    run.advance(_as_step(run.goto(step.on_timeout, step)))


def _on_escalate_timer(run: Run) -> None:
    """The escalation deadline passed without engagement: on to the next channel."""
    step = run.journey.step(run.step or "")
    assert isinstance(step, SendStep)
    channel = run.escalation.channel if run.escalation else None
    run.trace(step.id, "escalate", f"no engagement on {channel}")
    _continue_send(run, step)


def _on_defer_timer(run: Run) -> None:
    """Quiet hours ended: decide again (consent may have changed meanwhile) and send."""
    step = run.journey.step(run.step or "")
    assert isinstance(step, SendStep)
    _continue_send(run, step)


_TIMER_HANDLERS: Mapping[str, Callable[[Run], None]] = {
    "wait": _on_wait_timer, "timeout": _on_timeout_timer, "escalate": _on_escalate_timer, "defer": _on_defer_timer,
}


def _context(journey: CompiledJourney, event: Mapping[str, Any], profile: Profile) -> dict[str, Any]:
    return {"event": event, "profile": profile_context(profile), "journey": journey_context(journey)}
