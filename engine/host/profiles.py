"""Profile writes as the API and `journey profiles import` make them: a profile sent replaces the
stored one's fields and appends its consents (`merged`), and many are upserted at once a
transaction per chunk (`upsert`), the import saying which of its items were refused and why.

Every write appends the consents it carries to the ledger, never rewriting it; a consent that
says what the latest record for its channel and category already says (granted or not, from the
same source) is not a change and is not appended, so importing the same file twice leaves the
ledger as the first import left it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from channels import ConsentRecord, Profile, ProfileError
from channels.engagement import Engagement
from channels.profile import RcsCapability
from engine.errors import EventError
from engine.events import check_values, format_time
from engine.ports import Store

MAX_BATCH = 10_000
CHUNK = 1_000


@dataclass(slots=True)
class BulkResult:
    upserted: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {"index", "error"}

    def to_dict(self) -> dict[str, Any]:
        return {"upserted": self.upserted, "rejected": self.rejected}


def parse_profile(item: Any, now: datetime) -> Profile:
    """One profile document as an import takes it: consents without `at` (or with `at: null`) or
    `source` are stamped now and `api`. Raises ProfileError naming the field."""
    if not isinstance(item, dict):
        raise ProfileError(f"profile: expected a JSON object, got {type(item).__name__}")
    try:
        check_values(item, "profile")
    except EventError as exc:
        raise ProfileError(str(exc).removeprefix("profile.")) from None
    consents = item.get("consents")
    if isinstance(consents, list):
        item = {**item, "consents": [stamped(c, now) if isinstance(c, dict) else c for c in consents]}
    return Profile.from_dict(item)


def stamped(consent: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A consent change as the API takes it: `at` absent or null is now, `source` absent is `api`."""
    at = consent.get("at")
    return {"source": "api", **consent, "at": format_time(now) if at is None else at}


def merged(existing: Profile | None, incoming: Profile) -> Profile:
    """The upsert of `incoming` over what is stored: its fields, the stored ledger plus its changes,
    and its engagement when it gives one (history brought from another tool), else the stored."""
    history = existing.consents if existing else ()
    stored = existing.engagement if existing else None
    preferences = existing.preferences if existing else incoming.preferences  # the person's own: PUT keeps them
    return Profile(incoming.user_id, incoming.timezone, incoming.email, incoming.phone, incoming.push_token,
                   incoming.rcs_capable, incoming.attributes, history, _capability(existing, incoming),
                   imported(stored, incoming.engagement), incoming.locale, preferences).with_consents(
        changes(history, incoming.consents))


def imported(stored: Engagement | None, given: Engagement | None) -> Engagement | None:
    """The counts a document gives replace the stored ones of the channels it names (the others
    stay); the messages the engine tracks on each stay too, so feedback on its way counts once."""
    if given is None:
        return stored
    kept = stored or {}
    return MappingProxyType({**kept, **{channel: replace(counts, tracked=kept[channel].tracked) if channel in kept
                                        else counts for channel, counts in given.items()}})


def _capability(existing: Profile | None, incoming: Profile) -> RcsCapability | None:
    """The provider's cached answer survives an update that agrees with it; an `rcs_capable` that
    contradicts it is the newer word, so the answer is dropped (the next RCS send asks again)."""
    if incoming.rcs_capability is not None:
        return incoming.rcs_capability
    kept = existing.rcs_capability if existing is not None else None
    return kept if kept is not None and kept.capable == incoming.rcs_capable else None


def changes(history: Sequence[ConsentRecord], records: Iterable[ConsentRecord]) -> list[ConsentRecord]:
    """The records that change something: one that repeats the latest record for its channel and
    category (same `granted`, same `source`) is left out, whatever its `at`."""
    latest = {(c.channel, c.category): c for c in history}
    kept: list[ConsentRecord] = []
    for record in records:
        before = latest.get((record.channel, record.category))
        if before is not None and (before.granted, before.source) == (record.granted, record.source):
            continue
        latest[(record.channel, record.category)] = record
        kept.append(record)
    return kept


def upsert_profiles(store: Store, items: Sequence[Any], now: datetime,
                    lock: AbstractContextManager[Any] | None = None, first_index: int = 0) -> BulkResult:
    """Validate every item, then upsert the valid ones, a transaction per `CHUNK`; an item's
    error names its index (counted from `first_index`) and the field."""
    result = BulkResult()
    valid: list[Profile] = []
    for index, item in enumerate(items, first_index):
        try:
            valid.append(parse_profile(item, now))
        except ProfileError as exc:
            result.rejected.append({"index": index, "error": str(exc)})
    result.upserted = upsert(store, valid, now, lock)
    return result


def upsert(store: Store, profiles: Sequence[Profile], now: datetime,
           lock: AbstractContextManager[Any] | None = None) -> int:
    """Upsert `profiles` (each merged over the stored one), a transaction per `CHUNK`: how many."""
    for start in range(0, len(profiles), CHUNK):
        chunk = profiles[start:start + CHUNK]
        with lock or nullcontext(), store.transaction() as tx:
            tx.prefetch({p.user_id for p in chunk}, now)
            for profile in chunk:
                tx.put_profile(merged(tx.get_profile(profile.user_id), profile))
    return len(profiles)
