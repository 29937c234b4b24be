"""Taking an audience run through the profiles, one chunk per transaction, through the same
`Engine` (and so the same evaluator) as events and timers.

A chunk is the next `limit` profiles in user_id order after the run's cursor. Each is offered
the run's entry event (`journey.run`, id `<run_id>:<user_id>`); the journey's `audience` decides
who matches (`Runtime.entry_key`, as `when` does for an event), `re_entry` who may enter. The
instances it starts, the cursor and the counts commit together, so a crash replays at most the
chunk that did not commit: nobody is entered twice, nobody is missed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from channels import Profile
from engine.compiler import CompiledJourney
from engine.errors import JourneyNotFoundError
from engine.events import Event
from engine.ports import Tx
from engine.runs import FAILED, AudienceRun
from engine.service import Engine, as_seen

AUDIENCE_ERROR = "audience_error"  # the audience expression failed for the profile: not matched
RE_ENTRY = "re_entry"  # matched, but re_entry refused it (an instance is active, never, or too soon)


def run_chunk(engine: Engine, run_id: str, limit: int, owner: str | None = None) -> AudienceRun | None:
    """Enter the next chunk of the run in one transaction; the run as it now stands, or None when
    there is nothing for this caller to do (no such run, ended, or leased to another owner). A run
    whose journey version cannot be found ends `failed`."""
    now = engine.clock.now()
    try:
        with engine.unit() as tx:
            run = tx.lock_run(run_id)
            if run is None or not run.working or run.lease_owner not in (None, owner):
                return None
            journey = engine.journey_version(run.journey_id, run.version)
            page = tx.profiles_after(run.cursor, limit)
            matched, entered, skipped = _enter(engine, tx, journey, run, page, now)
            run = run.advanced(page[-1].user_id if page else run.cursor, len(page), matched, entered, skipped,
                               done=len(page) < limit, now=now)
            tx.save_run(run)
    except JourneyNotFoundError as exc:
        with engine.unit() as tx:
            run = tx.lock_run(run_id)
            if run is None:
                return None
            run = run.ended(FAILED, str(exc), now)
            tx.save_run(run)
    return run


def _enter(engine: Engine, tx: Tx, journey: CompiledJourney, run: AudienceRun, page: Sequence[Profile],
           now: datetime) -> tuple[int, int, Counter[str]]:
    """(matched, entered, skipped by reason) of one chunk. The audience reads the profile alone;
    only those it matches are loaded in full (consents, instances, recent sends) to enter."""
    skipped: Counter[str] = Counter()
    chosen: list[tuple[Event, str | None]] = []
    for profile in page:
        event = run.entry_event(profile.user_id)
        ok, key, why = engine.runtime.entry_key(journey, event, profile)
        if ok:
            chosen.append((event, key))
        elif why.startswith("trigger_error"):
            skipped[AUDIENCE_ERROR] += 1
    engine.recall.prefetch(tx, {event.user_id for event, _ in chosen}, now)
    entered = 0
    for event, key in chosen:
        profile = as_seen(tx, tx.get_profile(event.user_id) or Profile(event.user_id))
        if engine.enter(tx, journey, event, profile, key, now):
            entered += 1
        else:
            skipped[RE_ENTRY] += 1
    return len(chosen), entered, skipped
