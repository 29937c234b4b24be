"""RCS capability looked up while deciding: when an evaluation decided on the rcs channel and a
provider can tell whether the phone takes RCS (no fresh answer cached on the profile), it is
asked, its answer cached on the stored profile, and the evaluation run again with it. The
runtime is pure, so the first outcome is simply dropped: fallback to MMS/SMS is still decided
before anything is sent, and the decision says the capability was known rather than assumed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from channels import Profile
from engine.ports import CapabilityLookup, UsersTx
from engine.state import Outcome, Send, Skip


class RcsCheck:
    """The host's capability port (`CapabilityLookup`), None when no provider can tell (the
    profile's `rcs_capable` is then assumed)."""

    def __init__(self) -> None:
        self.lookup: CapabilityLookup | None = None

    def evaluated(self, tx: UsersTx, profile: Profile, now: datetime, evaluate: Callable[[Profile], Outcome],
                  ) -> tuple[Outcome, Profile]:
        """`evaluate(profile)`, or, when that decided on rcs and a provider answered, evaluated
        again on the profile with the answer; and the profile as it now stands."""
        outcome = evaluate(profile)
        if self.lookup is None or not _decides_rcs(outcome):
            return outcome, profile
        answer = self.lookup.lookup(profile, now)
        if answer is None:
            return outcome, profile
        stored = tx.get_profile(profile.user_id)
        if stored is not None:
            tx.put_profile(stored.with_capability(answer))
        profile = profile.with_capability(answer)
        return evaluate(profile), profile


def _decides_rcs(outcome: Outcome) -> bool:
    """Whether a send or a skip in `outcome` decided on the rcs channel."""
    return any(isinstance(c, Send | Skip) and any(d.channel == "rcs" for d in c.decisions) for c in outcome.commands)
