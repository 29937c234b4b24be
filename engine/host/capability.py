"""The capability port (`engine.ports.CapabilityLookup`) over the providers that can tell.

The rcs providers that answer "does this phone take RCS?" (`channels.capability.CapabilityCheck`,
RBM's capability check) are asked in failover order, before the first RCS send to a number and
again once the cached answer is older than the provider's TTL. The call happens while the engine
decides, so it is kept short (the provider's own `capability_timeout`) and never raises: a
provider that cannot tell now leaves the capability assumed, and that number is not asked again
for `retry_after`, so an outage does not slow every send.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import cast

from channels.capability import CapabilityCheck, needs_check
from channels.profile import Profile, RcsCapability
from channels.providers import Provider

log = logging.getLogger("journey.capability")

RETRY_AFTER = timedelta(minutes=5)
REMEMBERED = 10_000  # numbers whose failed check is remembered; past that the memory starts afresh


class ProviderCapability:
    """`CapabilityLookup` answered by the first provider that can tell."""

    def __init__(self, checks: Sequence[CapabilityCheck], retry_after: timedelta = RETRY_AFTER) -> None:
        self.checks = list(checks)
        self.retry_after = retry_after
        self._failed: dict[str, datetime] = {}  # number -> not asked again before

    @classmethod
    def of(cls, providers: Mapping[str, Sequence[Provider]]) -> ProviderCapability | None:
        """Over the rcs providers that can check capability; None when none can (assumed)."""
        checks = [cast(CapabilityCheck, p) for p in providers.get("rcs", ()) if callable(getattr(p, "check_rcs", None))]
        return cls(checks) if checks else None

    def lookup(self, profile: Profile, now: datetime) -> RcsCapability | None:
        phone = profile.phone
        if not phone or now < self._failed.get(phone, now):
            return None
        for check in self.checks:
            if not needs_check(profile, now, check.capability_ttl):
                return None
            answer = self._ask(check, phone)
            if answer is not None:
                self._failed.pop(phone, None)
                return RcsCapability(answer, now, check.name)
        if len(self._failed) >= REMEMBERED:
            self._failed.clear()
        self._failed[phone] = now + self.retry_after
        return None

    @staticmethod
    def _ask(check: CapabilityCheck, phone: str) -> bool | None:
        try:
            return check.check_rcs(phone)
        except Exception:  # noqa: BLE001 - a provider's bug leaves the capability assumed, never fails a send
            log.exception("capability check raised; capability assumed", extra={"provider": check.name})
            return None
