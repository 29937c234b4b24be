"""Google's service-account flow, shared by the Google providers (FCM, RBM).

A JWT signed (RS256, `cryptography`) with the account's private key is exchanged at `token_uri`
for an access token, cached until a minute before it expires; a 401 from the API drops it.
Sends run on several threads at once (a provider's `concurrency`): one fetches the token while
the others wait for it.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from channels.providers.base import TemporaryDeliveryError

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"


class ServiceAccount:
    """Access tokens for one service account (the parsed JSON key file) and one scope."""

    def __init__(self, account: Mapping[str, Any], scope: str, http: httpx.Client, *, clock: Callable[[], float],
                 token_uri: str | None = None, label: str = "google") -> None:
        self.label = label
        self.scope = scope
        self._issuer = str(account["client_email"])
        self._key_id = account.get("private_key_id")
        key = serialization.load_pem_private_key(str(account["private_key"]).encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{label}: the service account's private_key is not an RSA key")
        self._key = key
        self.token_uri = token_uri or str(account.get("token_uri") or GOOGLE_TOKEN_URI)
        self._http = http
        self._clock = clock
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def authorization(self) -> dict[str, str]:
        """The `Authorization` header; raises TemporaryDeliveryError when no token can be had."""
        return {"Authorization": f"Bearer {self.access_token()}"}

    def access_token(self) -> str:
        """The cached token, or a new one: the providers send from many threads at once, and the
        lock has one of them fetch it while the others wait rather than each asking Google."""
        with self._lock:
            now = self._clock()
            if self._token is None or self._token[1] <= now:
                self._token = self._fetch(now)
            return self._token[0]

    def forget(self, refused: Mapping[str, str]) -> None:
        """The API refused the token of the `refused` authorization (401): the next call fetches
        another, unless a thread sending at the same time already did."""
        with self._lock:
            if self._token is not None and refused.get("Authorization") == f"Bearer {self._token[0]}":
                self._token = None

    def _fetch(self, now: float) -> tuple[str, float]:
        form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": self.assertion(now)}
        try:
            response = self._http.post(self.token_uri, data=form)
        except httpx.HTTPError as exc:
            raise TemporaryDeliveryError(f"{self.label} token: {exc.__class__.__name__}: {exc}") from exc
        if not response.is_success:  # a rejected key is ours to fix: let another provider try meanwhile
            raise TemporaryDeliveryError(f"{self.label} token: HTTP {response.status_code}: {response.text[:200]}")
        try:
            granted = response.json()
            return str(granted["access_token"]), now + float(granted.get("expires_in", 3600)) - 60
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # no message went out yet
            raise TemporaryDeliveryError(f"{self.label} token: an answer without an access token: {exc}") from exc

    def assertion(self, now: float) -> str:
        """The signed JWT the token endpoint exchanges for an access token."""
        header = {"alg": "RS256", "typ": "JWT", **({"kid": self._key_id} if self._key_id else {})}
        claims = {"iss": self._issuer, "scope": self.scope, "aud": self.token_uri, "iat": int(now),
                  "exp": int(now) + 3600}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
