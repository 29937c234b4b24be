"""The forecast document (docs/cli.md): each figure's mean over the runs and its 90% interval
(the 5th and 95th percentiles of the run totals: nine launches in ten fall within), per channel
and in all, per segment, and for `--vs` the second version's and the difference run by run.

Every figure is first a total per run (`run_totals`: flat keys such as `("channels", "sms",
"messages")`), so a difference is taken run by run, where both versions met the same draws."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from engine.forecast.tally import ALL, Tally

Key = tuple[str, ...]
Totals = list[dict[Key, float]]
FIXED: tuple[Key, ...] = (("cost",), ("reached",), ("never_reached",), ("deferred_quiet_hours",), ("entered",))


def run_totals(tally: Tally, version: int, segment: Any, runs: int) -> Totals:
    """Each run's totals of one version (one segment or all)."""
    people = sum(tally.people.values()) if segment is ALL else tally.people[segment]
    totals: Totals = [defaultdict(float) for _ in range(runs)]
    for run, path, n in tally.of(version, segment):
        into = totals[run]
        for channel, cost in path.sends:
            into[("channels", channel, "messages")] += n
            into[("channels", channel, "cost")] += n * cost
            into[("cost",)] += n * cost
        for channel in path.reached:
            into[("channels", channel, "reached")] += n
        if path.reached:
            into[("reached",)] += n
        for reason in path.skipped:
            into[("skipped", reason)] += n
        into[("deferred_quiet_hours",)] += n * path.deferred
        into[("entered",)] += n * len(path.ended)
        for status in path.ended:
            into[("ended", status)] += n
    for into in totals:
        into[("never_reached",)] = people - into[("reached",)]
    return totals


def interval(values: Sequence[float], digits: int = 2) -> dict[str, float]:
    """Mean, 5th and 95th percentile (linear between the nearest runs)."""
    ordered = sorted(values)
    return {"mean": round(sum(ordered) / len(ordered), digits), "p5": round(_percentile(ordered, 0.05), digits),
            "p95": round(_percentile(ordered, 0.95), digits)}


def _percentile(ordered: Sequence[float], q: float) -> float:
    at = (len(ordered) - 1) * q
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def figures(totals: Totals) -> dict[str, Any]:
    """The intervals of every figure, nested as the document shows them."""
    keys = _keys(totals)
    document: dict[str, Any] = {"channels": {}, "skipped": {}, "ended": {}}
    for key in keys:
        digits = 6 if key[-1] == "cost" else 2
        _put(document, key, interval([run.get(key, 0.0) for run in totals], digits))
    for channel in document["channels"].values():
        for figure in ("messages", "cost", "reached"):
            channel.setdefault(figure, interval([0.0]))
    return document


def _keys(totals: Totals) -> list[Key]:
    found = set(FIXED)
    for run in totals:
        found.update(run)
    return sorted(found)


def _put(document: dict[str, Any], key: Key, value: Any) -> None:
    for part in key[:-1]:
        document = document.setdefault(part, {})
    document[key[-1]] = value


def difference(base: Totals, other: Totals) -> dict[str, Any]:
    """`other` minus `base`, run by run (both met the same draws), as intervals."""
    keys = sorted(set(_keys(base)) | set(_keys(other)))
    return figures([{k: b.get(k, 0.0) - a.get(k, 0.0) for k in keys} for a, b in zip(base, other, strict=True)])


def time_to_engagement(tally: Tally, version: int, segment: Any) -> dict[str, float | None]:
    """Seconds from a person's first stimulus to their first engagement, over every run: the
    median and the 90th percentile (null when nobody engaged)."""
    seconds: Counter[float] = Counter()
    for _, path, n in tally.of(version, segment):
        if path.first_engaged is not None:
            seconds[path.first_engaged] += n
    return {"p50": _weighted(seconds, 0.5), "p90": _weighted(seconds, 0.9)}


def _weighted(counts: Mapping[float, int], q: float) -> float | None:
    total = sum(counts.values())
    if not total:
        return None
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= q * total:
            return value
    return max(counts)


def summary(tally: Tally, version: int, segment: Any, runs: int) -> tuple[dict[str, Any], Totals]:
    """One version's figures (one segment or all), and its run totals for a difference."""
    totals = run_totals(tally, version, segment, runs)
    document = figures(totals)
    people = sum(tally.people.values()) if segment is ALL else tally.people[segment]
    cost, reached = document["cost"]["mean"], document["reached"]["mean"]
    document.update(profiles=people, cost_per_reached=round(cost / reached, 6) if reached else None,
                    time_to_engagement=time_to_engagement(tally, version, segment))
    return document, totals


def forecast_document(journeys: Sequence[str], tally: Tally, runs: int, seed: int, by: str | None) -> dict[str, Any]:
    """The whole document: the first version's figures; with a second, `vs` (its figures) and
    `difference` (second minus first); with `by`, each segment's figures the same way."""
    base, base_totals = summary(tally, 0, ALL, runs)
    document: dict[str, Any] = {"journey": journeys[0], "profiles": base.pop("profiles"), "runs": runs, "seed": seed,
                                **base}
    if len(journeys) > 1:
        other, other_totals = summary(tally, 1, ALL, runs)
        document["vs"] = {"journey": journeys[1], **{k: v for k, v in other.items() if k != "profiles"}}
        document["difference"] = difference(base_totals, other_totals)
    if by is not None:
        document["segments"] = {"by": by, "values": dict(_segments(tally, runs, len(journeys)))}
    document["evaluated_paths"] = tally.evaluated
    return document


def _segments(tally: Tally, runs: int, versions: int) -> Iterable[tuple[str, dict[str, Any]]]:
    for segment in tally.segments():
        figures_of, totals = summary(tally, 0, segment, runs)
        if versions > 1:
            other, other_totals = summary(tally, 1, segment, runs)
            figures_of["vs"] = {k: v for k, v in other.items() if k != "profiles"}
            figures_of["difference"] = difference(totals, other_totals)
        yield ("(none)" if segment is None else segment), figures_of
