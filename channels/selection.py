"""Channel selection for one send to one person at one moment.

Pure: everything (profile, consent ledger, recent sends, policy, time) comes
in as arguments, so the simulator and the server decide identically. Every
candidate gets a recorded decision with its reason, eligible or not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

from channels.consent import consent_reasons
from channels.encoding import sms_encoding
from channels.frequency import SentRecord, capped_channels
from channels.policy import AutoPolicy, FastPolicy, Policy, default_policy
from channels.preferences import PREFERENCE_OFF
from channels.profile import Profile
from channels.quiet_hours import quiet_until, recipient_zone
from channels.reach import Choice, Figures, weigh
from channels.regions import recipient_region
from channels.values import quick_init

STRATEGIES: tuple[str, ...] = ("first", "cheapest", "all", "escalate", "auto")
URGENCIES: tuple[str, ...] = ("low", "normal", "high", "critical")
_DEFAULT_STRATEGY = {"critical": "all", "high": "escalate", "normal": "escalate", "low": "cheapest"}
_SHORT_ESCALATION = timedelta(minutes=15)
_LONG_ESCALATION = timedelta(hours=2)
_ESCALATE_AFTER = {
    "critical": _SHORT_ESCALATION,
    "high": _SHORT_ESCALATION,
    "normal": _LONG_ESCALATION,
    "low": _LONG_ESCALATION,
}
ADDRESS_FIELD = {  # the profile field that holds each channel's address
    "push": "push_token",
    "email": "email",
    "sms": "phone",
    "mms": "phone",
    "rcs": "phone",
}


class SelectionError(ValueError):
    """A send request names an unknown strategy or urgency."""


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class SendRequest:
    """One send to one person: what the engine knows at that moment."""

    profile: Profile
    category: str
    urgency: str
    candidates: tuple[str, ...]
    contents: Mapping[str, Mapping[str, Any]]
    template_errors: Mapping[str, str]
    sent: Sequence[SentRecord]
    now: datetime
    strategy: str | None = None
    escalate_after: timedelta | None = None
    journey_capped: bool = False  # the journey's own limit is reached: every channel is `journey_cap`
    later: frozenset[str] = frozenset()  # escalate: channels whose turn comes later, not rendered yet
    muted: bool = False  # the person turned this journey off (one that says they may)


class Decision(NamedTuple):
    """Whether one candidate can be used, and why not. (Strategy auto's figures for it are the
    choice's: `shown` puts them beside it.)

    Decisions and deliveries are immutable values like the core's frozen dataclasses, but tuples:
    one is built for every candidate of every send, and a tuple is built in a third of the time
    (what keeps the channel decision above 50,000 a second on one core)."""

    channel: str
    eligible: bool
    reason: str | None
    fallback: str | None = None
    capability: str | None = None  # rcs: "known" (a provider answered) or "assumed" (the profile says)
    capability_source: str | None = None  # rcs, when known: the provider that answered

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "channel": self.channel,
            "eligible": self.eligible,
            "reason": self.reason,
        }
        if self.fallback is not None:
            data["fallback"] = self.fallback
        if self.capability is not None:
            data["capability"] = self.capability
        if self.capability_source is not None:
            data["capability_source"] = self.capability_source
        return data


def shown(decisions: Sequence[Decision], choice: Choice | None) -> list[dict[str, Any]]:
    """The decisions as every output shows them (simulate, the API, the stores): with strategy
    auto's reach, cost and score beside each eligible one (an rcs that fell back: its fallback's)."""
    figures = choice.figures if choice is not None else None
    if not figures:
        return [d.to_dict() for d in decisions]
    listed = []
    for decision in decisions:
        data = decision.to_dict()
        found = figures.get(decision.fallback or decision.channel) if decision.eligible or decision.fallback else None
        if found is not None:
            data["reach"], data["cost"], data["score"] = found
        listed.append(data)
    return listed


class Delivery(NamedTuple):
    """One message to send; `encoding`/`segments` are set for sms only. (A tuple: see `Decision`.)"""

    channel: str
    content: Mapping[str, Any]
    cost: float
    encoding: str | None
    segments: int | None


class Selection(NamedTuple):
    """The decisions for every candidate and the messages the strategy picked. (A tuple: see
    `Decision`.)"""

    decisions: tuple[Decision, ...]
    deliveries: tuple[Delivery, ...]
    strategy: str
    escalate_after: timedelta | None  # None: every delivery at once
    defer_until: datetime | None
    choice: Choice | None = None  # strategy auto: the order and why

    def chain(self) -> tuple[str, ...]:
        """The channels an escalation goes on to: those selected after the first, then those that
        may be used and are rendered when their turn comes (`SendRequest.later`)."""
        delivered = {d.channel for d in self.deliveries}
        return tuple(d.channel for d in self.deliveries[1:]) + tuple(
            d.channel for d in self.decisions if d.eligible and d.channel not in delivered)


class _Context(NamedTuple):
    request: SendRequest
    fast: FastPolicy
    consents: Mapping[str, str | None]  # each channel's consent reason for this send (None: it may go)
    capped: Mapping[str, str]  # channel -> the cap that closes it


def select(request: SendRequest, policy: Policy) -> Selection:
    """Decide every candidate, apply the RCS fallback, then the strategy; the quiet window and
    caps are those of the recipient's region when the policy has rules for it."""
    strategy, escalate_after = effective_strategy(request, policy)
    fast = policy.fast
    profile, category = request.profile, request.category
    region = recipient_region(profile, policy) if fast.regions else None
    rules = fast.rules_for(region)
    zone = recipient_zone(profile, policy) if category in rules.calendar else None
    capped = capped_channels(request.sent, category, request.now, policy, zone, region)
    ctx = _Context(request, fast, consent_reasons(profile.consents, category), capped)
    decisions, chain = _decide_all(ctx)
    choice = None
    if strategy == "auto" and chain:
        deliveries, choice, escalates = _auto(request, fast, chain)
        escalate_after = escalate_after if escalates else None
    else:
        deliveries = _apply_strategy(strategy, chain)
    defer_until = None
    if deliveries and category in rules.quiet_categories:
        zone = zone or recipient_zone(profile, policy)
        defer_until = quiet_until(request.now, zone, policy, category, request.urgency, region)
    return Selection(decisions, deliveries, strategy, escalate_after, defer_until, choice)


Render = Callable[[Sequence[str]], tuple[dict[str, Any], dict[str, str]]]
"""The messages of these channels: (content by channel, template error by channel)."""
Build = Callable[[dict[str, Any], dict[str, str], frozenset[str]], SendRequest]
"""The request, given (contents, template errors, the channels rendered later)."""


def select_rendering(candidates: tuple[str, ...], strategy: str | None, build: Build, render: Render,
                     policy: Policy) -> tuple[Selection, dict[str, str]]:
    """`select`, with the messages rendered as needed; returns the templates that failed too. An
    escalation starting renders a channel's message only once the channels before it cannot be
    used: the later ones are decided on what needs no message (address, consent, caps) and are
    rendered and checked in full when their turn comes (most never come: the first channel is
    engaged with). With rcs among them, whose fallback needs its message, all are rendered now;
    so they are for strategy auto, which weighs every candidate's cost (an SMS's by its segments).
    `strategy`: the step's, else the policy's default, else by urgency (`strategy_of`)."""
    lazy = strategy == "escalate" and "rcs" not in candidates
    for n in range(len(candidates) - 1) if lazy else ():  # the last round is the full selection below
        contents, errors = render(candidates[:n + 1])
        selection = select(build(contents, errors, frozenset(candidates[n + 1:])), policy)
        if selection.deliveries:
            return selection, errors
    contents, errors = render(candidates)
    return select(build(contents, errors, frozenset()), policy), errors


def strategy_of(strategy: str | None, urgency: str, policy: Policy) -> str | None:
    """The step's strategy, else the policy's `default_strategy`, else the urgency's default (None
    for an unknown urgency): the one `effective_strategy` takes."""
    return strategy or policy.fast.default_strategy or _DEFAULT_STRATEGY.get(urgency)


def effective_strategy(request: SendRequest, policy: Policy | None = None) -> tuple[str, timedelta | None]:
    """The step's strategy, else the policy's `default_strategy`, else the urgency default, and
    how long to wait before escalating: None when nothing escalates (auto: critical and low)."""
    urgency = request.urgency
    if urgency not in _DEFAULT_STRATEGY:
        raise SelectionError(f"unknown urgency {urgency!r}; expected one of {URGENCIES}")
    default = policy.fast.default_strategy if policy is not None else None
    strategy = request.strategy or default or _DEFAULT_STRATEGY[urgency]
    if strategy not in STRATEGIES:
        raise SelectionError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")
    if strategy == "auto":
        delays = (policy.fast.auto if policy is not None else default_auto()).escalate_after
        return strategy, (request.escalate_after or delays[urgency]) if urgency in delays else None
    if strategy != "escalate":
        return strategy, None
    return strategy, request.escalate_after or _ESCALATE_AFTER[urgency]


def _auto(request: SendRequest, fast: FastPolicy, chain: list[Delivery]) -> tuple[tuple[Delivery, ...], Choice, bool]:
    """strategy auto over the eligible deliveries: them in the order chosen (those to send
    together, or the chain to escalate along), and the choice with each one's figures (its reason
    and its figures by channel made when read)."""
    ranking = weigh(chain, request.urgency, request.profile.engagement, request.now, fast)
    ordered = tuple([chain[i] for i in ranking.order])
    choice = Choice("auto", tuple([d.channel for d in ordered]), ranking.explain,
                    partial(_by_channel, chain, ranking.figures))
    return (ordered[:ranking.send] if ranking.all_at_once else ordered), choice, not ranking.all_at_once


def _by_channel(chain: list[Delivery], figures: list[Figures]) -> dict[str, Figures]:
    return {delivery.channel: found for delivery, found in zip(chain, figures, strict=True)}


def default_auto() -> AutoPolicy:
    """The shipped policy's auto thresholds: for a caller that asks without a policy (`journey graph`)."""
    return default_policy().fast.auto


def _decide_all(ctx: _Context) -> tuple[tuple[Decision, ...], list[Delivery]]:
    decisions: list[Decision] = []
    chain: list[Delivery] = []
    used: set[str] = set()
    for channel in ctx.request.candidates:
        reason, delivery = _check(ctx, channel, ctx.request.contents.get(channel))
        if reason == "not_capable":
            delivery = _fallback(ctx, used)
            decisions.append(_rcs_decision(ctx.request.profile, reason, delivery.channel if delivery else None))
        elif channel == "rcs":
            decisions.append(_rcs_decision(ctx.request.profile, reason, None))
        else:
            decisions.append(_decision(channel, reason))
        if delivery is not None and delivery.channel not in used:
            used.add(delivery.channel)
            chain.append(delivery)
    return tuple(decisions), chain


def _fallback(ctx: _Context, used: set[str]) -> Delivery | None:
    """rcs can't reach this phone: mms if it has media and may go, else sms."""
    contents = ctx.request.contents
    mms = contents.get("mms")
    if mms is not None and mms.get("media_url") and "mms" not in used:
        delivery = _check(ctx, "mms", mms)[1]
        if delivery is not None:
            return delivery
    if "sms" in used:
        return None
    sms = contents.get("sms")
    if sms is None and "sms" not in ctx.request.template_errors:
        rcs_text = (contents.get("rcs") or {}).get("text")
        sms = {"text": rcs_text} if isinstance(rcs_text, str) else None
    return _check(ctx, "sms", sms)[1]


def _check(ctx: _Context, channel: str, content: Mapping[str, Any] | None) -> tuple[str | None, Delivery | None]:
    """The reason `channel` can't be used (None if it can), and its delivery if it can."""
    request = ctx.request
    profile = request.profile
    field = ADDRESS_FIELD.get(channel)
    if field is not None and not getattr(profile, field):
        return "no_address", None
    if channel == "rcs" and not profile.rcs_capable:
        return "not_capable", None
    reason = ctx.consents.get(channel, "no_consent")  # a channel no policy knows needs a consent none gave
    if reason is not None:
        return reason, None
    if request.muted or not profile.preferences.allows(request.category, channel):
        return PREFERENCE_OFF, None
    if channel in request.later:  # may be used: its message is rendered and checked when its turn comes
        return _cap(ctx, channel), None
    if channel in request.template_errors:
        return "template_error", None
    if content is None:
        return "no_content", None
    if channel == "sms":
        return _check_sms(ctx, content)
    capped = _cap(ctx, channel)
    if capped is not None:
        return capped, None
    return None, Delivery(channel, content, ctx.fast.costs[channel], None, None)


def _cap(ctx: _Context, channel: str) -> str | None:
    """The cap that closes `channel` to this send: the policy's (`frequency_cap`, `global_cap`), then the journey's."""
    reason = ctx.capped.get(channel) if ctx.capped else None
    return reason or ("journey_cap" if ctx.request.journey_capped else None)


def _check_sms(ctx: _Context, content: Mapping[str, Any]) -> tuple[str | None, Delivery | None]:
    text = content.get("text")
    if not isinstance(text, str):
        return "no_content", None
    encoded = sms_encoding(text)
    if encoded.segments > ctx.fast.max_segments:
        return "too_long", None
    capped = _cap(ctx, "sms")
    if capped is not None:
        return capped, None
    cost = ctx.fast.costs["sms"] * encoded.segments
    return None, Delivery("sms", content, cost, encoded.encoding, encoded.segments)


_DECISIONS: dict[tuple[str, str | None], Decision] = {}


def _decision(channel: str, reason: str | None) -> Decision:
    """Decisions are immutable values: share one per (channel, reason)."""
    key = (channel, reason)
    found = _DECISIONS.get(key)
    if found is None:
        found = _DECISIONS.setdefault(key, Decision(channel, reason is None, reason))
    return found


def _rcs_decision(profile: Profile, reason: str | None, fallback: str | None) -> Decision:
    """An rcs decision says whether the phone's capability was a provider's answer or assumed."""
    known = profile.rcs_capability
    key = (reason, fallback, known.source if known else None)
    found = _RCS_DECISIONS.get(key)
    if found is None:
        found = _RCS_DECISIONS.setdefault(key, Decision("rcs", reason is None, reason, fallback,
                                                        "known" if known else "assumed", key[2]))
    return found


_RCS_DECISIONS: dict[tuple[str | None, str | None, str | None], Decision] = {}


def _apply_strategy(strategy: str, chain: list[Delivery]) -> tuple[Delivery, ...]:
    if not chain:
        return ()
    if strategy == "first":
        return (chain[0],)
    if strategy == "cheapest":
        return (min(chain, key=lambda delivery: delivery.cost),)
    return tuple(chain)
