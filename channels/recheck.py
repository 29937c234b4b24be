"""The checks that must hold when a message is handed to a provider, not only when its step ran.

A message leaves later than the decision to send it: after a quiet-hours deferral, a lease, or
retries with backoff. In between, the person may have texted STOP, revoked consent, lost the
address, or the recipient's night may have begun. `recheck` says, right before each attempt,
whether the message may still go (and if not, why), or must wait for the quiet window's end.

The phone suppression list lives here too: a STOP from a number suppresses that number on the
phone channels, for every profile that holds it now or later, until a START from it.
`with_suppression` folds a suppression into a profile's consent as an opt-out, so the same
selection rules (`opted_out`) apply everywhere without the ledger being rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from channels.consent import KEYWORD_CATEGORIES, PHONE_CHANNELS, consent_state, reason_from_state
from channels.policy import Policy
from channels.preferences import PREFERENCE_OFF
from channels.profile import ConsentRecord, Profile
from channels.quiet_hours import quiet_until, recipient_zone
from channels.regions import recipient_region
from channels.selection import ADDRESS_FIELD
from channels.values import quick_init

SUPPRESSION_SOURCE = "suppression:STOP"


@quick_init
@dataclass(frozen=True, slots=True)
class Recheck:
    """`cancel`: the reason the message may not go at all (`opted_out`, `no_consent`,
    `no_address`); `defer_until`: it may go, but not before then (quiet hours)."""

    cancel: str | None = None
    defer_until: datetime | None = None

    @property
    def go(self) -> bool:
        return self.cancel is None and self.defer_until is None


GO = Recheck()


def recheck(profile: Profile | None, channel: str, category: str, policy: Policy, now: datetime,
            suppressed_since: datetime | None = None) -> Recheck:
    """May this message (channel, category) be handed to a provider now, for this recipient?"""
    if profile is None:
        return Recheck(cancel="no_address")
    field = ADDRESS_FIELD.get(channel)
    if field is not None and not getattr(profile, field):
        return Recheck(cancel="no_address")
    if suppressed_since is not None and channel in PHONE_CHANNELS:
        return Recheck(cancel="opted_out")
    reason = reason_from_state(consent_state(profile.consents), channel, category)
    if reason is not None:
        return Recheck(cancel=reason)
    if not profile.preferences.allows(category, channel):
        return Recheck(cancel=PREFERENCE_OFF)
    later = quiet_until(now, recipient_zone(profile, policy), policy, category, "normal",
                        recipient_region(profile, policy))
    return GO if later is None else Recheck(defer_until=later)


def with_suppression(profile: Profile, since: datetime | None) -> Profile:
    """The profile as the channel rules must see it while its phone number is suppressed: opted
    out of sms, mms and rcs for every category, whatever its own ledger says (the records are
    added for evaluation only, never stored)."""
    if since is None:
        return profile
    at = max([since, *(c.at for c in profile.consents)])
    records = tuple(ConsentRecord(channel, category, False, SUPPRESSION_SOURCE, at)
                    for channel in PHONE_CHANNELS for category in KEYWORD_CATEGORIES)
    return replace(profile, consents=profile.consents + records)
