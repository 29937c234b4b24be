"""Profile writes as the API takes them: `PUT /v1/profiles/{user_id}` replaces a profile,
`PATCH` merges into one, and `POST /v1/profiles` and `journey profiles import` upsert many at
once as PUT does one, a transaction per chunk, saying which items were refused and why.

Every write appends the consents it carries to the ledger, never rewriting it; a consent that
says what the latest record for its channel and category already says (granted or not, from the
same source) is not a change and is not appended, so importing the same file twice leaves the
ledger as the first import left it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from channels import ConsentRecord, Profile, ProfileError
from channels.engagement import Engagement
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
    """One profile document as the API takes it: consents without `at` (or with `at: null`) or
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
    return Profile(incoming.user_id, incoming.timezone, incoming.email, incoming.phone, incoming.push_token,
                   incoming.rcs_capable, incoming.attributes, history, imported(stored, incoming.engagement)
                   ).with_consents(changes(history, incoming.consents))


def imported(stored: Engagement | None, given: Engagement | None) -> Engagement | None:
    """The counts a document gives replace the stored ones of the channels it names (the others
    stay); the messages the engine tracks on each stay too, so feedback on its way counts once."""
    if given is None:
        return stored
    kept = stored or {}
    return MappingProxyType({**kept, **{channel: replace(counts, tracked=kept[channel].tracked) if channel in kept
                                        else counts for channel, counts in given.items()}})


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


PATCHABLE = ("timezone", "email", "phone", "push_token", "rcs_capable", "attributes", "consents", "engagement",
             "user_id")


def patched(existing: Profile, body: Mapping[str, Any], now: datetime) -> Profile:
    """`PATCH`: the fields `body` gives replace the stored ones (`null` clears; `rcs_capable` to
    false), `attributes` are merged key by key (a key given `null` is removed), consents are appended
    and engagement imported as `PUT` does.
    Raises ProfileError naming the field."""
    unknown = sorted(set(body) - set(PATCHABLE))
    if unknown:
        raise ProfileError(f"{unknown[0]}: not a profile field (expected one of {', '.join(PATCHABLE[:-1])})")
    attributes = body.get("attributes", {})
    if not isinstance(attributes, dict):
        raise ProfileError(f"attributes: expected an object, got {type(attributes).__name__}")
    kept_apart = ("consents", "engagement")  # merged() keeps the stored ones
    document = {k: v for k, v in existing.to_dict().items() if k not in kept_apart}
    document.update({k: v for k, v in body.items() if k != "attributes"})
    if document.get("rcs_capable") is None:  # cleared: a profile's rcs_capable is a boolean, false by default
        document["rcs_capable"] = False
    kept = {k: v for k, v in {**existing.attributes, **attributes}.items() if v is not None}
    return merged(existing, parse_profile({**document, "attributes": kept}, now))


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
    for start in range(0, len(valid), CHUNK):
        chunk = valid[start:start + CHUNK]
        with lock or nullcontext(), store.transaction() as tx:
            tx.prefetch({p.user_id for p in chunk}, now)
            for profile in chunk:
                tx.put_profile(merged(tx.get_profile(profile.user_id), profile))
        result.upserted += len(chunk)
    return result
