"""`journey forecast`: a journey (and an alternative) run over a whole population, `runs` times,
on the virtual clock and through the same evaluator as `journey simulate` and the server.

Each person-run draws its own outcomes (engine/forecast/outcomes.py) from a root that depends on
the seed, the run and the user id only: two versions compared meet the same draws. People alike
for the journey share their evaluated paths (engine/forecast/classes.py). The population is split
between worker processes by user id (engine/forecast/population.py); each loads the journeys
once, streams its share and returns a `Tally`; the parent merges them into the document.
"""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from channels import Policy, Profile, load_policy
from engine.compiler import CompiledJourney, load_file
from engine.errors import InputError
from engine.forecast.classes import PathTree, Reads
from engine.forecast.document import forecast_document
from engine.forecast.outcomes import person_seed, run_seed
from engine.forecast.path import NOTHING, walk
from engine.forecast.population import Population, Share
from engine.forecast.tally import Tally
from engine.simulator import run_times

DEFAULT_RUNS = 20
MOST_RUNS = 10_000
PROGRESS_EVERY = 500  # people between a worker's progress reports
SEGMENT_FIELDS = ("timezone", "locale")

Progress = Callable[[int, int | None], None]
"""Told (people done, people in all when known) as the forecast goes."""


@dataclass(frozen=True)
class Version:
    """One side of a comparison: a journey and the policy it runs under."""

    journey: CompiledJourney
    policy: Policy


@dataclass(frozen=True)
class Options:
    """How many runs, the seed of their draws, the profile field to break the figures down by
    (`attributes.country`, `timezone`, `locale`), and for a journey entered by audience runs,
    when they are (as `journey simulate --start/--until`; `now` when neither a start nor an event says)."""

    runs: int = DEFAULT_RUNS
    seed: int = 0
    by: str | None = None
    start: datetime | None = None
    until: datetime | None = None
    now: datetime | None = None

    def check(self) -> None:
        if not 1 <= self.runs <= MOST_RUNS:
            raise InputError(f"runs: {self.runs} is not from 1 to {MOST_RUNS}")
        if self.by is not None and self.by not in SEGMENT_FIELDS and not _attribute(self.by):
            raise InputError(f"by: {self.by!r} is no profile field to break down by "
                             f"(attributes.<name>, {', '.join(SEGMENT_FIELDS)})")


def _attribute(by: str) -> str | None:
    name = by.removeprefix("attributes.")
    return name if by.startswith("attributes.") and name else None


def segment_of(profile: Profile, by: str | None) -> str | None:
    """The person's segment: the value of `by` in their profile, as text (None: they have none)."""
    if by is None:
        return None
    name = _attribute(by)
    value = profile.attributes.get(name) if name is not None else getattr(profile, by)
    return None if value is None else str(value)


@dataclass(frozen=True)
class Plan:
    """Everything a worker needs besides the journeys: the population, the options, when the
    audience runs are for each version, and the instant consents without `at` are dated."""

    population: Population
    options: Options
    runs_at: tuple[tuple[datetime, ...], ...]
    consented_at: datetime | None


def plan(versions: Sequence[Version], population: Population, options: Options) -> Plan:
    options.check()
    first = population.first_time()
    every = list(population.events) if not isinstance(population.events, Path) else []
    runs_at = tuple(tuple(run_times(v.journey, v.policy, every, options.start, options.until,
                                    options.start or first or options.now)) for v in versions)
    return Plan(population, options, runs_at, first or options.start or options.now)


def tally_share(versions: Sequence[Version], work: Plan, share: Share, progress: Callable[[int], None] | None = None,
                ) -> Tally:
    """One share of the population through every version, every run."""
    options = work.options
    tally = Tally(len(versions))
    reads = [Reads(v.journey) for v in versions]
    trees: list[dict[bytes, PathTree]] = [{} for _ in versions]
    nothing = tally.index(NOTHING)
    for done, person in enumerate(work.population.people(share, work.consented_at), 1):
        profile, events = person
        segment = segment_of(profile, options.by)
        tally.people[segment] += 1
        root = person_seed(options.seed, profile.user_id)
        roots = [run_seed(root, run) for run in range(options.runs)]
        for number, version in enumerate(versions):
            counts, times = tally.counts[number], work.runs_at[number]
            if not events and not times:
                for run in range(options.runs):
                    counts[(run, segment, nothing)] += 1
                continue
            start = min([*(e.timestamp for e in events[:1]), *times[:1]])
            key = reads[number].key(profile, events, start, version.policy)
            tree = trees[number].get(key)
            if tree is None:
                tree = trees[number][key] = PathTree(partial(walk, version.journey, version.policy, profile,
                                                             events, times), tally.index)
            for run, root in enumerate(roots):
                counts[(run, segment, tree.path(root))] += 1
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(PROGRESS_EVERY)
    tally.evaluated = sum(tree.evaluated for by_key in trees for tree in by_key.values())
    return tally


def forecast(versions: Sequence[Version], population: Population, options: Options,
             sources: Sequence[tuple[Path, Path | None]] | None = None, workers: int = 1,
             progress: Progress | None = None) -> dict[str, Any]:
    """The forecast document (docs/cli.md). With `workers` > 1 and the versions' `sources` (journey
    file, policy file), the population is split between that many processes."""
    work = plan(versions, population, options)
    total = population.count()
    if workers > 1 and sources is not None:
        tally = _in_processes(sources, work, workers, total, progress)
    else:
        done = 0

        def told(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done, total)

        tally = tally_share(versions, work, Share(), told)
    if progress is not None:
        progress(sum(tally.people.values()), sum(tally.people.values()))
    return forecast_document([v.journey.id for v in versions], tally, options.runs, options.seed, options.by)


_reports: list[Any] = []  # in a worker process: its queue to the parent's progress bar


def _started(reports: Any) -> None:
    """A worker process's initializer: keeps the queue it was started with (a queue is handed to a
    process when it starts, never with a task)."""
    _reports.append(reports)


def _worker(sources: Sequence[tuple[Path, Path | None]], work: Plan, share: Share) -> Tally:
    """One worker process: its own compiled journeys, its share of the people."""
    versions = [Version(load_file(journey), load_policy(policy)) for journey, policy in sources]
    return tally_share(versions, work, share, _reports[0].put if _reports else None)


def _in_processes(sources: Sequence[tuple[Path, Path | None]], work: Plan, workers: int, total: int | None,
                  progress: Progress | None) -> Tally:
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: safe beside threads
    reports = context.Queue()
    tally = Tally(len(sources))
    done = 0
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_started, initargs=(reports,)) as pool:
        pending = {pool.submit(_worker, sources, work, Share(n, workers)) for n in range(workers)}
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            done += _drain(reports)
            if progress is not None:
                progress(done, total)
            for future in finished:
                tally.merge(future.result())
    return tally


def _drain(reports: Any) -> int:
    got = 0
    while True:
        try:
            got += reports.get_nowait()
        except queue.Empty:
            return got
