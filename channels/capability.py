"""Asking whether a phone takes RCS, rather than assuming it.

A provider that can tell (RBM's capability check) is a `CapabilityCheck`. Its answer is cached
on the profile (`rcs_capability`: capable, checked_at, source) and trusted for the provider's
`capability_ttl`; channel selection then decides on it, before anything is sent, and the rcs
decision says whether the capability was known or assumed. Google reports a number's
capabilities only while it connected to RCS within the last 31 days, so an answer goes stale.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from channels.profile import Profile


class CapabilityCheck(Protocol):
    """A provider that answers "does this phone take RCS?"."""

    name: str
    capability_ttl: timedelta

    def check_rcs(self, phone: str) -> bool | None:
        """True or False; None when it cannot tell now (an error, a timeout): ask again later."""
        ...


def needs_check(profile: Profile, now: datetime, ttl: timedelta) -> bool:
    """A phone whose capability no provider has answered within `ttl`."""
    known = profile.rcs_capability
    return bool(profile.phone) and (known is None or now - known.checked_at >= ttl)
