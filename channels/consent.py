"""Consent: current state derived from an append-only ledger, and SMS keywords.

The ledger is never rewritten (who, when and how must stay provable), so the
current state is always derived: the latest record per (channel, category) by
`at`, ties broken by ledger order. The keywords and their replies are policy
data, one set per language; a reply is in the language of the word that matched.
The rows of the consent audit trail (a user's ledger row, a suppression-list row) are here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Literal

from channels.policy import CHANNELS, Policy, default_policy, keyword_key
from channels.profile import ConsentRecord, format_timestamp

Status = Literal["granted", "revoked", "none"]
State = dict[tuple[str, str], bool]

# Channels where a send to a phone needs an explicit opt-in (TCPA, CTIA).
PHONE_CHANNELS: tuple[str, ...] = ("sms", "mms", "rcs")
KEYWORD_CATEGORIES: tuple[str, ...] = ("marketing", "transactional")
_NO_CONSENT_NEEDED = frozenset({"webhook"})
_TRANSACTIONAL_BY_DEFAULT = frozenset({"push", "email", "in_app"})

STOP_SOURCE = "keyword:STOP"
START_SOURCE = "keyword:START"


class Keyword(Enum):
    STOP = "STOP"
    START = "START"
    HELP = "HELP"


@dataclass(frozen=True, slots=True)
class KeywordMatch:
    """An inbound text that is a keyword: which one, and the language whose list it is in."""

    kind: Keyword
    language: str


@dataclass(frozen=True, slots=True)
class KeywordOutcome:
    """What an inbound keyword does: consent records to append and the one reply."""

    records: tuple[ConsentRecord, ...]
    reply_message: str
    reply_text: str


def consent_state(consents: Sequence[ConsentRecord]) -> State:
    """(channel, category) -> granted, for the latest record of each pair."""
    if isinstance(consents, tuple):
        return _cached_state(consents)
    return _derive_state(consents)


@lru_cache(maxsize=4096)
def _cached_state(consents: tuple[ConsentRecord, ...]) -> State:
    # The engine passes the same profile tuple for every send: derive once.
    return _derive_state(consents)


def consent_reasons(consents: Sequence[ConsentRecord], category: str) -> Mapping[str, str | None]:
    """Every channel's consent reason for a `category` send (None: it may go), from one reading of
    the ledger: a channel decision looks each candidate up rather than asking each time."""
    if isinstance(consents, tuple):
        return _cached_reasons(consents, category)
    return _reasons(_derive_state(consents), category)


@lru_cache(maxsize=4096)
def _cached_reasons(consents: tuple[ConsentRecord, ...], category: str) -> Mapping[str, str | None]:
    return _reasons(_cached_state(consents), category)


def _reasons(state: State, category: str) -> Mapping[str, str | None]:
    return MappingProxyType({channel: reason_from_state(state, channel, category) for channel in CHANNELS})


def _derive_state(consents: Sequence[ConsentRecord]) -> State:
    latest: dict[tuple[str, str], ConsentRecord] = {}
    for record in consents:
        key = (record.channel, record.category)
        current = latest.get(key)
        if current is None or record.at >= current.at:
            latest[key] = record
    return {key: record.granted for key, record in latest.items()}


def consent_status(consents: Sequence[ConsentRecord], channel: str, category: str) -> Status:
    granted = consent_state(consents).get((channel, category))
    if granted is None:
        return "none"
    return "granted" if granted else "revoked"


def consent_reason(consents: Sequence[ConsentRecord], channel: str, category: str) -> str | None:
    """None when a send is allowed, else `no_consent` or `opted_out`."""
    return reason_from_state(consent_state(consents), channel, category)


def reason_from_state(state: State, channel: str, category: str) -> str | None:
    if channel in _NO_CONSENT_NEEDED:
        return None
    granted = state.get((channel, category))
    if granted is False:
        return "opted_out"
    if granted is None:
        implied = category == "transactional" and channel in _TRANSACTIONAL_BY_DEFAULT
        return None if implied else "no_consent"
    return None


def classify_keyword(text: str, policy: Policy | None = None) -> KeywordMatch | None:
    """The keyword an inbound SMS is, if its whole text is one of the policy's words (any case,
    trimmed, accents ignored); a word listed in two languages belongs to the first."""
    found = (policy or default_policy()).fast.keywords.get(keyword_key(text))
    if found is None:
        return None
    kind, language = found
    return KeywordMatch(Keyword[kind.upper()], language)


def apply_keyword(keyword: Keyword | KeywordMatch, consents: Sequence[ConsentRecord], at: datetime,
                  policy: Policy) -> KeywordOutcome:
    """Records to append and the reply, in the keyword's language (a bare `Keyword`: the policy's
    first language), for an inbound keyword; the ledger is not changed."""
    first = next(iter(policy.keywords))
    match = keyword if isinstance(keyword, KeywordMatch) else KeywordMatch(keyword, first)
    keyword = match.kind
    language = match.language  # a START word of the first language (START is what French speakers send too)
    if keyword is Keyword.START and language == first:  # answers in the language of the STOP it undoes
        language = _last_stop_language(consents, first) or first
    texts = (policy.keywords.get(language) or next(iter(policy.keywords.values()))).replies
    if keyword is Keyword.STOP:
        source = STOP_SOURCE if match.language == first else f"{STOP_SOURCE}:{match.language}"
        records = tuple(
            ConsentRecord(channel, category, False, source, at)
            for channel in PHONE_CHANNELS
            for category in KEYWORD_CATEGORIES
        )
        return KeywordOutcome(records, "stop_confirmation", texts.stop_confirmation)
    if keyword is Keyword.START:
        pairs = revoked_by_last_stop(consents)
        records = tuple(ConsentRecord(ch, cat, True, START_SOURCE, at) for ch, cat in pairs)
        return KeywordOutcome(records, "start_confirmation", texts.start_confirmation)
    return KeywordOutcome((), "help", texts.help)


def _is_stop(source: str | None) -> bool:
    """A STOP's record: `keyword:STOP`, or `keyword:STOP:<language>` for a word of another language
    than the policy's first (`keyword:STOP:fr` for ARRET), so the START that undoes it answers in it."""
    return source is not None and (source == STOP_SOURCE or source.startswith(STOP_SOURCE + ":"))


def _last_stop_language(consents: Sequence[ConsentRecord], first: str) -> str | None:
    """The language of the most recent STOP in the ledger, if it has one."""
    source = next((c.source for c in reversed(consents) if _is_stop(c.source)), None)
    return None if source is None else source.removeprefix(STOP_SOURCE).lstrip(":") or first


def revoked_by_last_stop(consents: Sequence[ConsentRecord]) -> list[tuple[str, str]]:
    """The (channel, category) pairs granted just before the most recent STOP."""
    ledger = list(consents)
    last = next((i for i in range(len(ledger) - 1, -1, -1) if _is_stop(ledger[i].source)), None)
    if last is None:
        return []
    first = last
    while first > 0 and _is_stop(ledger[first - 1].source) and ledger[first - 1].at == ledger[last].at:
        first -= 1
    before = _derive_state(ledger[:first])
    stopped = {(r.channel, r.category) for r in ledger[first : last + 1]}
    return [pair for pair, granted in before.items() if granted and pair in stopped]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One consent ledger row of the audit trail: its position in write order (across all users),
    whose it is, and the record."""

    position: int
    user_id: str
    record: ConsentRecord

    def to_dict(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "number": None, **self.record.to_dict()}


@dataclass(frozen=True, slots=True)
class SuppressionEntry:
    """One row of the suppression list's ledger in the audit trail: a STOP (or START) from a phone
    number, which holds for its phone channels (sms, mms, rcs) whoever holds the number."""

    position: int
    number: str
    keyword: str
    source: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"user_id": None, "number": self.number, "channel": None, "category": None,
                "granted": self.keyword != "STOP", "source": self.source, "at": format_timestamp(self.at)}
