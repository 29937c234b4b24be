"""What both stores agree on when they erase a person.

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

ERASED = "erased"
"""The reason an erased person's instances end with, and the error of their cancelled messages."""


def address_hash(salt: str, address: str | None) -> str | None:
    """HMAC-SHA256 of the address (as stored: E.164 phone, email as given) under `salt`, in hex."""
    if not address:
        return None
    return hmac.new(salt.encode(), address.encode(), hashlib.sha256).hexdigest()
