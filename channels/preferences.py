"""A person's preferences: which kinds of message they want on which channel, and the journeys they
turned off. Apart from consent, which stays the legal record: a channel turned off here is
ineligible with reason `preference_off`, whatever the consent ledger says, and turning it on again
grants nothing the ledger does not.

`{"categories": {"marketing": {"sms": false, "email": true}}, "journeys": {"win-back": false}}`:
what is not said is on. A journey is turned off only if it says it may be (`mutable: true`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

CHANNELS: tuple[str, ...] = ("push", "in_app", "email", "sms", "mms", "rcs", "webhook")
PREFERENCE_OFF = "preference_off"
MAX_ENTRIES = 200  # categories, channels of each, and journeys: what one person can have said
_NONE: Mapping[str, Any] = MappingProxyType({})


class PreferencesError(ValueError):
    """A preferences document is malformed; the message names the member at fault."""


@dataclass(frozen=True, slots=True)
class Preferences:
    """Per category, each channel on or off; per journey, on or off. Unspecified: on."""

    categories: Mapping[str, Mapping[str, bool]] = field(default_factory=lambda: _NONE)
    journeys: Mapping[str, bool] = field(default_factory=lambda: _NONE)

    def allows(self, category: str, channel: str) -> bool:
        return self.categories.get(category, _NONE).get(channel, True) is not False

    def mutes(self, journey_id: str) -> bool:
        return self.journeys.get(journey_id, True) is False

    def __bool__(self) -> bool:
        return bool(self.categories or self.journeys)

    def to_dict(self) -> dict[str, Any]:
        return {"categories": {c: dict(channels) for c, channels in self.categories.items()},
                "journeys": dict(self.journeys)}

    @classmethod
    def from_dict(cls, data: object, channels: tuple[str, ...] = CHANNELS) -> Preferences:
        """A document as `to_dict` writes it, checked: known channels, booleans, at most `MAX_ENTRIES`
        of each; raises PreferencesError naming the member (`categories.marketing.sms`)."""
        if data is None:
            return NO_PREFERENCES
        doc = _mapping(data, "preferences", ("categories", "journeys"))
        categories = {name: MappingProxyType(_switches(value, f"categories.{name}", channels))
                      for name, value in _mapping(doc.get("categories") or {}, "categories").items()}
        journeys = _switches(doc.get("journeys") or {}, "journeys", None)
        return cls(MappingProxyType(categories), MappingProxyType(journeys))


NO_PREFERENCES = Preferences()


def _mapping(value: object, where: str, members: tuple[str, ...] | None = None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PreferencesError(f"{where}: expected an object, got {type(value).__name__}")
    if len(value) > MAX_ENTRIES:
        raise PreferencesError(f"{where}: more than {MAX_ENTRIES} entries")
    for key in value:
        if not isinstance(key, str) or not key or "\x00" in key or len(key) > 200:
            raise PreferencesError(f"{where}: {key!r} is not a name")
        if members is not None and key not in members:
            raise PreferencesError(f"{where}.{key}: unknown member (expected {', '.join(members)})")
    return value


def _switches(value: object, where: str, names: tuple[str, ...] | None) -> dict[str, bool]:
    """`{name: true|false}`, each name one of `names` when given."""
    switches = _mapping(value, where)
    for key, on in switches.items():
        if names is not None and key not in names:
            raise PreferencesError(f"{where}.{key}: unknown channel (expected one of {', '.join(names)})")
        if not isinstance(on, bool):
            raise PreferencesError(f"{where}.{key}: expected true or false, got {on!r}")
    return dict(switches)
