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
    Choice,
    Decision,
    Delivery,
    Policy,
    Profile,
    SendRequest,
    SentRecord,
)
from channels.links import CodeSource, Tracked, TrackedLink, Tracker, new_code
from channels.selection import select_rendering, strategy_of
from engine.compiler import CompiledJourney, Rendered
from engine.errors import EvaluationError
from engine.events import Event, format_time
from engine.expressions import instant
from engine.model import BranchStep, DigestStep, SendStep, SplitStep, Step, WaitForStep, WaitStep, format_duration
from engine.ports import EntryHistory
from engine.runs import RUN_EVENT
from engine.sandbox import RECIPIENT
from engine.state import (
    END_OF_STEPS,
    NO_MARKS,
    STAY,
    Cancel,
    Command,
    Escalation,
    Instance,
    Outcome,
    RecentView,
    Run,
    Send,
    Skip,
    Trace,
    journey_context,
    preferences_page,
    profile_context,
    recipient,
)
from engine.steps.digest import collect, digest_step, on_digest_timer
from engine.steps.sends import begin_send, expired, journey_capped, skip_reason
from engine.steps.throttle import throttle_step
from engine.steps.waits import resume, wait_for_step, wait_step


class Runtime:
    """Advances instances; holds the policy, fixed for its lifetime, and where the codes of tracked
    links come from (`codes`: random; a dry run hands a seeded source)."""

    def __init__(self, policy: Policy, trace: bool = True, codes: CodeSource = new_code) -> None:
        self.policy = policy
        self.tracing = trace
        self.tracker = Tracker(policy.links, codes) if policy.links.base_url else None
        self.preference_links: Callable[[str], str] = preferences_page
        """A person's `preferences_url` in templates: the server sets its public page with their key."""

    def entry_key(self, journey: CompiledJourney, event: Event, profile: Profile, now: datetime | None = None,
                  ) -> tuple[bool, str | None, str]:
        """Does this event start the journey for this user, and under which instance key? (`now`:
        what `now` reads in the conditions; the event's time when not given.)"""
        if event.type != (journey.definition.trigger.event or RUN_EVENT):  # an audience run enters by its own event
            return False, None, "not_trigger"
        when = journey.expression("trigger.when") or journey.expression("trigger.audience")
        key_expr = journey.expression("instance_key")
        if when is None and key_expr is None:
            return True, None, "ok"
        context = {**_context(journey, event.context(), profile, now or event.timestamp, self.policy),
                   "preferences_url": self.preference_links(profile.user_id)}
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
              instance_id: str, sent: Sequence[SentRecord], now: datetime, recent: RecentView = NO_MARKS) -> Outcome:
        instance = Instance(instance_id=instance_id, journey_id=journey.id, version=journey.version,
                            user_id=profile.user_id, key=key, entered_at=now, event=event.context())
        run = Run(self.policy, self.tracing, journey, instance, profile, sent, now, _STEP_HANDLERS,
                  self.tracker, recent, self.preference_links)
        run.trace(None, "enter", f"key={key}" if key is not None else None)
        run.advance(journey.first_step)
        return run.outcome()

    def on_event(self, instance: Instance, journey: CompiledJourney, event: Event, profile: Profile,
                 sent: Sequence[SentRecord], now: datetime, recent: RecentView = NO_MARKS) -> Outcome:
        """Goal, exit_on, wait_for, a digest and escalation feedback, in that order of precedence."""
        if not instance.active:
            return Outcome(instance)
        run = Run(self.policy, self.tracing, journey, instance, profile, sent, now, _STEP_HANDLERS,
                  self.tracker, recent, self.preference_links)
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
                 sent: Sequence[SentRecord], now: datetime, recent: RecentView = NO_MARKS) -> Outcome:
        """A due timer; one the instance no longer waits on is ignored (it was superseded)."""
        if not instance.active or instance.timer is None or instance.timer.timer_id != timer_id:
            return Outcome(instance)
        run = Run(self.policy, self.tracing, journey, instance, profile, sent, now, _STEP_HANDLERS,
                  self.tracker, recent, self.preference_links)
        kind = instance.timer.kind
        run.timer = None
        _TIMER_HANDLERS[kind](run)
        return run.outcome()


# --- step handlers: each returns the next step id, STAY or END_OF_STEPS -------------------------


def _send_step(run: Run, step: Step) -> object:
    assert isinstance(step, SendStep)
    run.escalation = None
    if not begin_send(run, step):
        return STAY
    return _attempt_send(run, step)


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
    taken = step.paths[-1].next
    for path in step.paths:
        point -= path.weight
        if point < 0:
            taken = path.next
            break
    branch = f"{step.id}:{taken}"
    if branch not in run.branches:  # counted per branch (engine.stats); a loop back takes the same one
        run.branches = (*run.branches, branch)
    return taken


def _exit_step(run: Run, step: Step) -> object:
    return END_OF_STEPS


_STEP_HANDLERS: Mapping[str, Callable[[Run, Step], object]] = {
    "send": _send_step, "wait": wait_step, "wait_for": wait_for_step,
    "branch": _branch_step, "split": _split_step, "exit": _exit_step,
    "digest": digest_step, "throttle": throttle_step,
}


# --- sending -----------------------------------------------------------------------------


def _attempt_send(run: Run, step: SendStep, why: str | None = None) -> object:
    """Select channels now (consent, caps and quiet hours as of this instant) and send. An
    escalation sends the next channel (`why`: what ended the last one's turn): in candidate
    order, or for strategy auto, the most likely (or reach per cost) of those left, weighed again."""
    if expired(run, step):
        return run.goto(step.next, step)
    escalation = run.escalation
    message = run.journey.definition.messages[step.message]
    candidates = escalation.remaining if escalation else tuple(step.channels or message.channels())
    auto = (step.strategy or run.policy.fast.default_strategy) == "auto"
    strategy = "first" if escalation and not auto else step.strategy
    capped = journey_capped(run)
    muted = run.journey.definition.mutable and run.profile.preferences.mutes(run.journey.id)

    def request(contents: dict[str, Any], errors: dict[str, str], later: frozenset[str]) -> SendRequest:
        return SendRequest(
            profile=run.profile, category=run.journey.definition.category, urgency=step.urgency,
            candidates=candidates, contents=contents, template_errors=errors, sent=run.sent, now=run.now,
            strategy=strategy, escalate_after=step.escalate_after, journey_capped=capped, later=later, muted=muted)

    renderer = _Renderer(run, step.message)
    selection, errors = select_rendering(candidates, strategy_of(strategy, step.urgency, run.policy), request,
                                         renderer, run.policy)
    tracked, locales = renderer.tracked(), renderer.rendered.locales
    if selection.deliveries and selection.defer_until is not None:
        run.schedule("defer", selection.defer_until, step.message)
        run.trace(step.id, "deferred", f"quiet hours until {format_time(selection.defer_until)}")
        return STAY
    if not selection.deliveries:
        return _nothing_sent(run, step, selection.decisions, errors, escalation is not None)
    choice = selection.choice.after(why) if selection.choice and why else selection.choice
    if escalation is None and selection.escalate_after is None:
        for delivery in selection.deliveries:
            _emit(run, step, delivery, selection.decisions, choice, tracked, locales)
        return run.goto(step.next, step)
    first = selection.deliveries[0]
    message_id = _emit(run, step, first, selection.decisions, choice, tracked, locales)
    # The chain is the channels eligible now; each is checked again when its turn comes.
    if selection.choice is not None:
        rest = selection.choice.order[1:]
    elif escalation:
        rest = _after(candidates, selection.decisions, first.channel)
    else:
        rest = selection.chain()
    if not rest:
        run.escalation = None
        return run.goto(step.next, step)
    after = escalation.after if escalation else (selection.escalate_after or timedelta(hours=2))
    run.escalation = Escalation(rest, after, message_id, first.channel)
    run.schedule("escalate", run.now + after)
    return STAY


class _Renderer:
    """Renders a message's channels as `select_rendering` asks for them, each once (a channel
    rendered for an earlier round is not rendered again, nor are its links given new codes), in the
    reader's variant, with the links made short when the policy tracks them (so an SMS is measured,
    and an RCS message held to RBM's limits, as it will be sent); a failing template is recorded."""

    def __init__(self, run: Run, message: str) -> None:
        self.run, self.message = run, message
        self.rendered = Rendered({}, {}, {})
        self.links: dict[str, TrackedLink] = {}
        self.context: dict[str, Any] | None = None

    def __call__(self, candidates: Sequence[str]) -> tuple[dict[str, Any], dict[str, str]]:
        done = self.rendered
        wanted = (*candidates, "mms", "sms") if "rcs" in candidates else candidates
        missing = [c for c in wanted if c not in done.contents and c not in done.errors]
        if missing:
            run = self.run
            if self.context is None:
                self.context = run.context()
            rewrite = partial(run.tracker.rewrite, links=self.links) if run.tracker else None
            found = run.journey.render_channels(self.message, missing, self.context, rewrite)
            done.contents.update(found.contents)
            done.errors.update(found.errors)
            done.locales.update(found.locales)
        return done.contents, done.errors

    def tracked(self) -> Tracked:
        return Tracked(self.rendered.contents, self.links)


def _nothing_sent(run: Run, step: SendStep, decisions: tuple[Decision, ...], errors: Mapping[str, str],
                  escalating: bool) -> object:
    if escalating:
        run.trace(step.id, "escalation_exhausted", "no remaining channel is eligible")
        run.escalation = None
        return run.goto(step.next, step)
    reason = skip_reason(d.reason for d in decisions)
    detail = "; ".join(f"{c}: {e}" for c, e in errors.items()) or None
    run.commands.append(Skip(run.instance_id, run.user_id, step.id, step.message, reason,
                             decisions, run.now, detail))
    run.trace(step.id, "skip", reason)
    return run.goto(step.next, step)


def _emit(run: Run, step: SendStep, delivery: Delivery, decisions: tuple[Decision, ...],
          choice: Choice | None, tracked: Tracked, locales: Mapping[str, str]) -> str:
    message_id = run.next_id("m")
    category = run.journey.definition.category
    run.commands.append(Send(
        message_id=message_id, instance_id=run.instance_id, journey_id=run.journey.id, user_id=run.user_id,
        step=step.id, message=step.message, channel=delivery.channel, category=category, content=delivery.content,
        cost=delivery.cost, encoding=delivery.encoding, segments=delivery.segments, decisions=decisions, at=run.now,
        choice=choice,
        links=tracked.links_in(delivery.content),
        digest=run.digest.summary() if run.digest is not None else None,
        locale=locales.get(delivery.channel),
    ))
    run.sent.append(SentRecord(delivery.channel, category, run.now, run.journey.id))
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
    if isinstance(step, WaitForStep):
        resume(run, step, event)
        return
    if isinstance(step, DigestStep):
        collect(run, step, event)
        return
    escalation = run.escalation
    if isinstance(step, SendStep) and escalation and escalation.message_id == event.properties.get("message_id"):
        _escalation_feedback(run, step, escalation, event)


def _escalation_feedback(run: Run, step: SendStep, escalation: Escalation, event: Event) -> None:
    """Engagement ends the step; a machine's fetch (a mail proxy, a link preview: `machine: true`)
    is none. A failure escalates at once."""
    channel = escalation.channel or ""
    if event.type in run.policy.engagement_events(channel) and not event.properties.get("machine"):
        run.cancel_timer()
        run.escalation = None
        run.trace(step.id, "engaged", event.type)
        run.advance(_as_step(run.goto(step.next, step)))
    elif event.type == f"{channel}.failed":
        run.cancel_timer()
        run.trace(step.id, "escalate", f"{channel} failed")
        _continue_send(run, step, f"{channel} failed")


def _continue_send(run: Run, step: SendStep, why: str | None = None) -> None:
    result = _attempt_send(run, step, why)
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
    escalation = run.escalation
    channel = escalation.channel if escalation else None
    run.trace(step.id, "escalate", f"no engagement on {channel}")
    within = f" within {format_duration(escalation.after)}" if escalation else ""
    _continue_send(run, step, f"no engagement on {channel}{within}")


def _on_defer_timer(run: Run) -> None:
    """Quiet hours ended: decide again (consent may have changed meanwhile) and send."""
    step = run.journey.step(run.step or "")
    assert isinstance(step, SendStep)
    _continue_send(run, step)


_TIMER_HANDLERS: Mapping[str, Callable[[Run], None]] = {
    "wait": _on_wait_timer, "timeout": _on_timeout_timer, "escalate": _on_escalate_timer, "defer": _on_defer_timer,
    "digest": on_digest_timer,
}


def _context(journey: CompiledJourney, event: Mapping[str, Any], profile: Profile, now: datetime, policy: Policy,
             ) -> dict[str, Any]:
    return {"event": event, "profile": profile_context(profile), "journey": journey_context(journey),
            "now": instant(now), RECIPIENT: recipient(profile, policy)}
