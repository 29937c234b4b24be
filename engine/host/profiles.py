"""Profiles in bulk: `POST /v1/profiles` and `journey profiles import` upsert many at once, as
`PUT /v1/profiles/{user_id}` does one (fields replaced, consents appended to the ledger, never
rewritten), a transaction per chunk, and say which items were refused and why."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from channels import Profile, ProfileError
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
    """The upsert of `incoming` over what is stored: its fields, the stored ledger plus its consents."""
    history = existing.consents if existing else ()
    return Profile(incoming.user_id, incoming.timezone, incoming.email, incoming.phone, incoming.push_token,
                   incoming.rcs_capable, incoming.attributes, history).with_consents(incoming.consents)


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
