"""What both stores agree on when they erase a person, and the consent audit trail they both feed.

The proof of past consent that an erasure keeps must not hold the address in clear, yet must
let someone who already knows the address find that proof again (a regulator asking "did
+33612345678 consent to SMS?"). So an address is kept as HMAC-SHA256 under a random salt of the
store's own (the SQL store keeps it in `meta.erasure_salt`): without the salt the hashes cannot be
compared across databases or looked up in a precomputed table. A phone number has few enough
possible values that whoever holds the database, salt included, can still test candidates: this
is pseudonymisation (GDPR art. 4(5)), not anonymisation, which is what keeping a proof allows.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from engine.ports import LedgerEntry, Privacy, SuppressionEntry

Position = tuple[int, int]
"""Where a reader of the audit trail is: the last consent ledger row and suppression row it has."""



def address_hash(salt: str, address: str | None) -> str | None:
    """HMAC-SHA256 of the address (as stored: E.164 phone, email as given) under `salt`, in hex."""
    if not address:
        return None
    return hmac.new(salt.encode(), address.encode(), hashlib.sha256).hexdigest()


def consent_trail(store: Privacy, since: datetime | None, after: Position, limit: int
                  ) -> tuple[list[LedgerEntry | SuppressionEntry], Position | None]:
    """A page of the consent audit trail: every user's ledger rows and the suppression list's
    rows (a STOP or START from a number, whoever holds it, or no one), each in the order written,
    merged by time. Returns the page and the position to go on from (None: nothing more now)."""
    consents = store.consent_feed(since, after[0], limit + 1)
    numbers = store.suppression_feed(since, after[1], limit + 1)
    page: list[LedgerEntry | SuppressionEntry] = []
    while len(page) < limit and (consents or numbers):
        take_consent = bool(consents) and (not numbers or consents[0].record.at <= numbers[0].at)
        page.append(consents.pop(0) if take_consent else numbers.pop(0))
    last = after
    for entry in page:
        last = (entry.position, last[1]) if isinstance(entry, LedgerEntry) else (last[0], entry.position)
    return page, last if consents or numbers else None
