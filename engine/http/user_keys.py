"""User keys: a key per person that opens only their own feed and preferences, so a browser or an
app can read them without the API key. A key is an HMAC of the user id under the server's secret
(`JOURNEY_USER_KEY_SECRET`; without it, one derived from the API keys), checked by recomputing
it: nothing is stored, and changing the secret revokes every key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Collection

PREFIX = "uk_"
USER_SCOPED = re.compile(r"^/v1/users/(?P<user>[^/]+)/(?:feed|preferences)(?:/[^/]*){0,2}$")
"""The paths a user key opens: its own user's feed and preferences."""


class UserKeys:
    """Makes and checks user keys under one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def for_server(cls, secret: str | None, api_keys: Collection[str]) -> UserKeys:
        """Keys under `secret`, else under one derived from the API keys (an open server, with
        neither, checks no key at all)."""
        if secret:
            return cls(secret.encode("utf-8"))
        joined = "\n".join(sorted(api_keys)).encode("utf-8")
        return cls(hmac.new(joined, b"journey-engine user keys", hashlib.sha256).digest())

    def key_for(self, user_id: str) -> str:
        digest = hmac.new(self._secret, user_id.encode("utf-8"), hashlib.sha256).digest()
        return PREFIX + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")

    def opens(self, token: bytes, path: str) -> bool:
        """Whether `token` is the key of the user whose feed or preferences `path` is."""
        found = USER_SCOPED.match(path)
        if found is None:
            return False
        return hmac.compare_digest(token, self.key_for(found["user"]).encode("ascii"))


def is_user_key(token: bytes) -> bool:
    return token.startswith(PREFIX.encode("ascii"))
