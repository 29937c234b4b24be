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

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple, Protocol

from channels.engagement import Engagement
from channels.policy import FastPolicy

FREE = 0.000001
"""What a free channel counts as costing in a score of reach per unit of cost."""


class Choice:
    """Why a send went where it went: the strategy, the channels in the order chosen, one line, and
    the figures each eligible channel was weighed by (`figures`: reach, cost, score by channel;
    the decisions show them, `channels.selection.shown`).

    The line is written when it is first read (the message rendered, stored or logged), not when
    the choice is made: the numbers are decided with the choice, but putting them into words
    costs more than deciding, and a decision that is only evaluated never needs them."""

    __slots__ = ("_figures", "_reason", "order", "strategy")

    def __init__(self, strategy: str, order: tuple[str, ...], reason: str | Callable[[], str],
                 figures: Mapping[str, Figures] | Callable[[], Mapping[str, Figures]] | None = None) -> None:
        self.strategy = strategy
        self.order = order
        self._reason = reason
        self._figures = figures

    @property
    def reason(self) -> str:
        reason = self._reason
        if not isinstance(reason, str):
            reason = self._reason = reason()
        return reason

    @property
    def figures(self) -> Mapping[str, Figures]:
        """By channel (a stored choice has none: its decisions were written with them)."""
        figures = self._figures
        if figures is None:
            return {}
        if callable(figures):
            figures = self._figures = figures()
        return figures

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "order": list(self.order), "reason": self.reason}

    def after(self, why: str) -> Choice:
        """The choice made again at an escalation: `why` the step went on, then the reason."""
        return Choice(self.strategy, self.order, lambda: f"{why}; {self.reason}", lambda: self.figures)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Choice:
        return cls(data["strategy"], tuple(data["order"]), data["reason"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Choice):
            return NotImplemented
        return (self.strategy, self.order, self.reason) == (other.strategy, other.order, other.reason)

    def __hash__(self) -> int:
        return hash((self.strategy, self.order))

    def __repr__(self) -> str:
        return f"Choice({self.strategy!r}, {self.order!r}, {self.reason!r})"


Figures = tuple[float, float, float]
"""reach, cost and score of one option."""


class Ranking(NamedTuple):
    """The options in the order chosen (indexes into the options given), how many of them to send
    now (`all_at_once`: those together; else the first, then escalating), each option's figures,
    and what writes the one-line reason (`explain()`, called when the reason is read). A tuple, as
    `channels.selection.Decision` is: one is made for every decision."""

    order: tuple[int, ...]
    send: int
    all_at_once: bool
    figures: list[Figures]
    explain: Callable[[], str]


class Priced(Protocol):
    """An eligible channel with its cost for this message (sms: per segment): a `Delivery`."""

    @property
    def channel(self) -> str: ...

    @property
    def cost(self) -> float: ...


def reach(engagement: Engagement | None, channel: str, now: datetime, fast: FastPolicy) -> float:
    """The chance that this person engages with a message on `channel` (see the module's doc), to
    4 decimals (what is shown is what is ranked). A channel that no event counts as engagement for
    keeps its prior: history could only lower it."""
    return weigh([_Priced(channel, 0.0)], "high", engagement, now, fast).figures[0][0]


class _Priced(NamedTuple):
    channel: str
    cost: float


_UNKNOWN = (0.5, False)  # a channel the policy has no figures for: even odds, no history


def weigh(options: Sequence[Priced], urgency: str, engagement: Engagement | None, now: datetime,
          fast: FastPolicy) -> Ranking:
    """Each option's reach, cost and score for `urgency`, and the options ordered by them (see the
    module's doc). One loop: this runs on every auto decision, so it reads plain numbers
    (`FastPolicy.weighing`, `ChannelEngagement.as_of_seconds`), builds each sort key as it goes,
    and rounds by arithmetic (`round(x, 4)` costs three times as much)."""
    weighing, floor = fast.weighing, fast.auto.floor
    priors, weight, per_second = weighing.priors, weighing.weight, weighing.per_second
    history_of, seconds = engagement or {}, now.timestamp()
    normal, low = urgency == "normal", urgency == "low"
    figures: list[Figures] = []
    keys: list[tuple[float, float, float, int]] = []
    add_figures, add_key = figures.append, keys.append
    for i, option in enumerate(options):
        channel, cost = option.channel, option.cost
        rate, counts = priors.get(channel, _UNKNOWN)
        history = history_of.get(channel) if counts else None
        if history is not None:
            ago = history.as_of_seconds - seconds  # negative: as of the past
            factor = 2.0 ** (ago * per_second) if ago < 0 else 1.0
            rate = (weight * rate + history.recent_engaged * factor) / (weight + history.recent_sent * factor)
        found = round(rate * 10000) / 10000 if rate < 1.0 else 1.0  # never below 0: no term is
        if normal:
            score = round(found / (cost if cost > FREE else FREE) * 10000) / 10000
            add_key((1.0, -found, cost, i) if found < floor else (0.0, -score, cost, i))
            add_figures((found, cost, score))
        elif low:
            add_key((1.0, -found, -found, i) if found < floor else (0.0, cost, -found, i))
            add_figures((found, cost, cost))
        else:  # the most likely first; ties: the cheaper, then the candidate order
            add_key((0.0, -found, cost, i))
            add_figures((found, cost, found))
    keys.sort()
    return _FINISH[urgency](options, figures, tuple([key[3] for key in keys]), fast)


def _critical(options: Sequence[Priced], figures: list[Figures], order: tuple[int, ...], fast: FastPolicy,
              ) -> Ranking:
    """As many of the most likely as it takes for the chance of reaching to be at least `target`."""
    target = fast.auto.target
    missed, count = 1.0, 0
    for i in order:
        missed *= 1 - figures[i][0]
        count += 1
        if 1 - missed >= target:
            break
    return Ranking(order, count, True, figures,
                   partial(_critical_reason, options, figures, order[:count], 1 - missed, target))


def _high(options: Sequence[Priced], figures: list[Figures], order: tuple[int, ...], fast: FastPolicy) -> Ranking:
    return Ranking(order, len(order), False, figures, partial(_high_reason, options, figures, order))


def _normal(options: Sequence[Priced], figures: list[Figures], order: tuple[int, ...], fast: FastPolicy) -> Ranking:
    return Ranking(order, len(order), False, figures,
                   partial(_normal_reason, options, figures, order, fast.auto.floor))


def _low(options: Sequence[Priced], figures: list[Figures], order: tuple[int, ...], fast: FastPolicy) -> Ranking:
    return Ranking(order, 1, True, figures, partial(_low_reason, options, figures, order, fast.auto.floor))


_FINISH: dict[str, Callable[[Sequence[Priced], list[Figures], tuple[int, ...], FastPolicy], Ranking]] = {
    "critical": _critical, "high": _high, "normal": _normal, "low": _low}


# The one-line reasons, written when a choice's reason is first read.

def _critical_reason(options: Sequence[Priced], figures: list[Figures], chosen: tuple[int, ...], chance: float,
                     target: float) -> str:
    each = ", ".join(f"{options[i].channel} {figures[i][0]:.2f}" for i in chosen)
    verdict = f"at least the target {target:.2f}" if chance >= target else \
        f"short of the target {target:.2f} with every eligible channel"
    return (f"{_listed([options[i].channel for i in chosen])} at once: chance of reaching "
            f"{_chance(chance, target)} ({each}), {verdict} for urgency critical")


def _high_reason(options: Sequence[Priced], figures: list[Figures], order: tuple[int, ...]) -> str:
    first, rest = order[0], order[1:]
    reach, cost, _ = figures[first]
    head = f"{options[first].channel} {'first' if rest else 'only'}: reach {reach:.2f} at {_money(cost)}"
    beaten = ", ".join(f"{options[i].channel} {figures[i][0]:.2f} at {_money(figures[i][1])}" for i in rest)
    return f"{head} beats {beaten} for urgency high" if rest else f"{head} for urgency high"


def _normal_reason(options: Sequence[Priced], figures: list[Figures], order: tuple[int, ...], floor: float) -> str:
    first, rest = order[0], order[1:]
    reaches = [r for r, _, _ in figures]
    head = f"{options[first].channel} {'first' if rest else 'only'}: {_per_cost(figures[first])}"
    above = [i for i in rest if reaches[i] >= floor]
    below = [i for i in rest if reaches[i] < floor]
    parts = [head + (" beats " + ", ".join(f"{options[i].channel} {_per_cost(figures[i])}" for i in above)
                     if above else "")]
    if below:
        parts.append(", ".join(f"{options[i].channel} {reaches[i]:.2f}" for i in below)
                     + f" below the floor {floor:.2f}")
    if reaches[first] < floor:
        parts[0] += f" (below the floor {floor:.2f}, " + ("as every channel: the most likely first)" if rest else
                                                          "but the only channel)")
    return "; ".join(parts) + " for urgency normal"


def _low_reason(options: Sequence[Priced], figures: list[Figures], order: tuple[int, ...], floor: float) -> str:
    first = order[0]
    pick, (reach, cost, _) = options[first].channel, figures[first]
    if reach >= floor:
        head = f"{pick}: the cheapest with reach at least {floor:.2f}: {reach:.2f} at {_money(cost)}"
    else:
        head = f"{pick}: no channel reaches the floor {floor:.2f}, the most likely: {reach:.2f} at {_money(cost)}"
    below = [i for i in order[1:] if figures[i][0] < floor]
    if below and reach >= floor:
        head += "; " + ", ".join(f"{options[i].channel} {figures[i][0]:.2f}" for i in below) + " below it"
    return f"{head} for urgency low"


def _per_cost(figures: Figures) -> str:
    reach, cost, _ = figures
    if cost == 0:
        return f"free at reach {reach:.2f}"
    return f"{reach / cost:,.0f} reach per unit cost ({reach:.2f} at {_money(cost)})"


def _money(cost: float) -> str:
    """0.0083, 0.0001, 0.0000 for free; a cost under 0.0001 keeps two digits (0.000042)."""
    return f"{cost:.4f}" if cost == 0 or cost >= 0.0001 else f"{cost:.2g}"


def _chance(value: float, target: float) -> str:
    """Two decimals; four when two would round a shortfall up to the target (0.985 is not 0.99)."""
    return f"{value:.4f}" if value < target <= round(value, 2) else f"{value:.2f}"


def _listed(channels: Sequence[str]) -> str:
    return channels[0] if len(channels) == 1 else f"{', '.join(channels[:-1])} and {channels[-1]}"
