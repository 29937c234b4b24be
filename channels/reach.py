"""`strategy: auto`: the eligible channels of one send weighed by reach against cost, by urgency,
and the decision explained with numbers.

A channel's reach for a person is the chance that they engage with a message on it: their own
history shrunk towards the policy's prior, (prior_weight x prior + engaged) / (prior_weight +
sent), where each message counts half as much every `half_life` since it went. So a new person
gets the prior and a well-known one their own rate. Then, by urgency (thresholds in the policy's
`auto`):

- critical: the most likely channels at once, as many as it takes for the chance that at least one
  reaches the person, 1 - (1 - r1)(1 - r2)..., to be at least `target` (all if never);
  score: reach.
- high: the most likely first, escalating to the next; score: reach.
- normal: the most reach per unit of cost first (reach / cost; a free channel counts as costing
  `FREE` so its score is finite, and highest), among channels at or above `floor`; those below
  after, most likely first; escalating; score: reach per unit of cost.
- low: the cheapest channel whose reach is at least `floor`, else the most likely; score: cost.

Ties keep the candidate order. Pure: the profile's engagement, the time and the policy come in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from channels.engagement import Engagement
from channels.policy import FastPolicy

FREE = 0.000001
"""What a free channel counts as costing in a score of reach per unit of cost."""


@dataclass(frozen=True, slots=True)
class Choice:
    """Why a send went where it went: the strategy, the channels in the order chosen, one line."""

    strategy: str
    order: tuple[str, ...]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "order": list(self.order), "reason": self.reason}

    def after(self, why: str) -> Choice:
        """The choice made again at an escalation: `why` the step went on, then the reason."""
        return replace(self, reason=f"{why}; {self.reason}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Choice:
        return cls(data["strategy"], tuple(data["order"]), data["reason"])


@dataclass(frozen=True, slots=True)
class Option:
    """One eligible channel as the ranking sees it: its cost for this message (sms: per segment)."""

    channel: str
    cost: float


Figures = tuple[float, float, float]
"""reach, cost and score of one option."""


@dataclass(frozen=True, slots=True)
class Ranking:
    """The options in the order chosen (indexes into the options given), how many of them to send
    now (`all_at_once`: those together; else the first, then escalating), each one's figures, and
    the one-line reason."""

    order: tuple[int, ...]
    send: int
    all_at_once: bool
    figures: tuple[Figures, ...]
    reason: str


def reach(engagement: Engagement | None, channel: str, now: datetime, fast: FastPolicy) -> float:
    """The chance that this person engages with a message on `channel` (see the module's doc). A
    channel that no event counts as engagement for keeps its prior: history could only lower it."""
    prior = fast.reach.get(channel, 0.5)
    history = engagement.get(channel) if engagement else None
    if history is None or not fast.engagement.get(channel):
        return prior
    sent, engaged = history.recent(now, fast.auto.half_life)
    weight = fast.auto.prior_weight
    return min(1.0, max(0.0, (weight * prior + engaged) / (weight + sent)))


def rank(options: Sequence[Option], urgency: str, engagement: Engagement | None, now: datetime,
         fast: FastPolicy) -> Ranking:
    """Order the eligible options for `urgency` and say why."""
    reaches = [round(reach(engagement, o.channel, now, fast), 4) for o in options]
    return _RANKERS[urgency](options, reaches, fast)


def _by(keys: Sequence[tuple[float, ...]]) -> tuple[int, ...]:
    """Indexes in the order of their keys (ties: the candidate order)."""
    return tuple(sorted(range(len(keys)), key=keys.__getitem__))


def _critical(options: Sequence[Option], reaches: list[float], fast: FastPolicy) -> Ranking:
    order = _by([(-r, o.cost, i) for i, (o, r) in enumerate(zip(options, reaches, strict=True))])
    target = fast.auto.target
    missed, count = 1.0, 0
    for i in order:
        missed *= 1 - reaches[i]
        count += 1
        if 1 - missed >= target:
            break
    chance = 1 - missed
    chosen = [options[i].channel for i in order[:count]]
    each = ", ".join(f"{options[i].channel} {reaches[i]:.2f}" for i in order[:count])
    verdict = f"at least the target {target:.2f}" if chance >= target else \
        f"short of the target {target:.2f} with every eligible channel"
    reason = f"{_listed(chosen)} at once: chance of reaching {_chance(chance, target)} ({each}), {verdict}"
    figures = tuple((r, o.cost, r) for o, r in zip(options, reaches, strict=True))
    return Ranking(order, count, True, figures, f"{reason} for urgency critical")


def _high(options: Sequence[Option], reaches: list[float], fast: FastPolicy) -> Ranking:
    order = _by([(-r, o.cost, i) for i, (o, r) in enumerate(zip(options, reaches, strict=True))])
    first, rest = order[0], order[1:]
    head = f"{options[first].channel} {'first' if rest else 'only'}: reach {reaches[first]:.2f} at " \
           f"{_money(options[first].cost)}"
    beaten = ", ".join(f"{options[i].channel} {reaches[i]:.2f} at {_money(options[i].cost)}" for i in rest)
    reason = f"{head} beats {beaten}" if rest else head
    figures = tuple((r, o.cost, r) for o, r in zip(options, reaches, strict=True))
    return Ranking(order, len(order), False, figures, f"{reason} for urgency high")


def _normal(options: Sequence[Option], reaches: list[float], fast: FastPolicy) -> Ranking:
    floor = fast.auto.floor
    scores = [round(r / max(o.cost, FREE), 4) for o, r in zip(options, reaches, strict=True)]
    order = _by([(1.0, -r, o.cost, i) if r < floor else (0.0, -s, o.cost, i)
                 for i, (o, r, s) in enumerate(zip(options, reaches, scores, strict=True))])
    first, rest = order[0], order[1:]
    head = f"{options[first].channel} {'first' if rest else 'only'}: {_per_cost(options[first], reaches[first])}"
    above = [i for i in rest if reaches[i] >= floor]
    below = [i for i in rest if reaches[i] < floor]
    parts = [head + (" beats " + ", ".join(f"{options[i].channel} {_per_cost(options[i], reaches[i])}"
                                           for i in above) if above else "")]
    if below:
        parts.append(", ".join(f"{options[i].channel} {reaches[i]:.2f}" for i in below)
                     + f" below the floor {floor:.2f}")
    if reaches[first] < floor:
        parts[0] += f" (below the floor {floor:.2f}, " + ("as every channel: the most likely first)" if rest else
                                                          "but the only channel)")
    figures = tuple(zip(reaches, [o.cost for o in options], scores, strict=True))
    return Ranking(order, len(order), False, figures, "; ".join(parts) + " for urgency normal")


def _low(options: Sequence[Option], reaches: list[float], fast: FastPolicy) -> Ranking:
    floor = fast.auto.floor
    order = _by([(1.0, -r, -r, i) if r < floor else (0.0, o.cost, -r, i)
                 for i, (o, r) in enumerate(zip(options, reaches, strict=True))])
    first = order[0]
    pick = options[first]
    if reaches[first] >= floor:
        head = f"{pick.channel}: the cheapest with reach at least {floor:.2f}: {reaches[first]:.2f} at " \
               f"{_money(pick.cost)}"
    else:
        head = f"{pick.channel}: no channel reaches the floor {floor:.2f}, the most likely: " \
               f"{reaches[first]:.2f} at {_money(pick.cost)}"
    below = [i for i in order[1:] if reaches[i] < floor]
    if below and reaches[first] >= floor:
        head += "; " + ", ".join(f"{options[i].channel} {reaches[i]:.2f}" for i in below) + " below it"
    figures = tuple((r, o.cost, o.cost) for o, r in zip(options, reaches, strict=True))
    return Ranking(order, 1, True, figures, f"{head} for urgency low")


_RANKERS = {"critical": _critical, "high": _high, "normal": _normal, "low": _low}


def _per_cost(option: Option, reach: float) -> str:
    if option.cost == 0:
        return f"free at reach {reach:.2f}"
    return f"{reach / option.cost:,.0f} reach per unit cost ({reach:.2f} at {_money(option.cost)})"


def _money(cost: float) -> str:
    """0.0083, 0.0001, 0.0000 for free; a cost under 0.0001 keeps two digits (0.000042)."""
    return f"{cost:.4f}" if cost == 0 or cost >= 0.0001 else f"{cost:.2g}"


def _chance(value: float, target: float) -> str:
    """Two decimals; four when two would round a shortfall up to the target (0.985 is not 0.99)."""
    return f"{value:.4f}" if value < target <= round(value, 2) else f"{value:.2f}"


def _listed(channels: Sequence[str]) -> str:
    return channels[0] if len(channels) == 1 else f"{', '.join(channels[:-1])} and {channels[-1]}"
