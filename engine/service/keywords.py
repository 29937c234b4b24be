"""STOP / START / HELP in an inbound SMS or a typed RCS reply: consent changes at once (the
profile's ledger and the number's suppression list), and one reply by SMS, a transactional
message of its own."""

from __future__ import annotations

from datetime import datetime

from channels import Decision, Keyword, Policy, Profile, apply_keyword, classify_keyword, sms_encoding
from engine.events import Event
from engine.ports import IdSource, Store, UsersTx
from engine.state import Outcome, Send, Trace


class Keywords:
    """The policy's keywords, and the ids of the replies."""

    def __init__(self, policy: Policy, new_id: IdSource) -> None:
        self.policy = policy
        self.new_id = new_id

    def on_inbound(self, tx: UsersTx, event: Event, profile: Profile, now: datetime,
                   ) -> tuple[Profile, Outcome | None]:
        """The profile as the keyword left it (written in `tx`), and the reply to carry out (None:
        the text is no keyword)."""
        keyword = classify_keyword(str(event.properties.get("text", "")), self.policy)
        if keyword is None:
            return profile, None
        phone = profile.phone or event.properties.get("from")
        if isinstance(phone, str) and phone and keyword.kind is not Keyword.HELP:
            tx.record_suppression(phone, keyword.kind.value, now, f"{event.type}:{event.id or event.user_id}")
        outcome = apply_keyword(keyword, profile.consents, now, self.policy)
        if outcome.records:
            profile = profile.with_consents(outcome.records)
            tx.put_profile(profile)
        return profile, self._reply(profile, outcome.reply_message, outcome.reply_text, now)

    def from_number(self, store: Store, number: str, text: str, source: str, now: datetime) -> str | None:
        """An inbound SMS from a number no profile holds: a STOP suppresses the number all the same
        (for any profile that holds it now or later), a START lifts that. Returns the reply text
        for the sender (the host answers it directly: there is no profile to address it to)."""
        keyword = classify_keyword(text, self.policy)
        if keyword is None:
            return None
        if keyword.kind is not Keyword.HELP:
            with store.transaction() as tx:
                tx.record_suppression(number, keyword.kind.value, now, source)
        return apply_keyword(keyword, (), now, self.policy).reply_text

    def _reply(self, profile: Profile, message: str, text: str, now: datetime) -> Outcome:
        encoding = sms_encoding(text)
        decision = Decision("sms", True, None)
        send = Send(message_id=self.new_id(), instance_id=None, journey_id=None, user_id=profile.user_id, step=None,
                    message=message, channel="sms", category="transactional", content={"text": text},
                    cost=round(self.policy.cost("sms") * encoding.segments, 6), encoding=encoding.encoding,
                    segments=encoding.segments, decisions=(decision,), at=now)
        return Outcome(None, [send, Trace(now, profile.user_id, None, None, "keyword", message)])
