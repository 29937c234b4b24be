"""Push through Firebase Cloud Messaging HTTP v1, with `httpx`.

Auth is Google's service-account flow (`channels.providers.google_auth`): a signed JWT
exchanged for an access token, cached until a minute before it expires and fetched by one
sending thread while the others wait for it. Then
`POST {base_url}/v1/projects/{project}/messages:send`.

Error mapping: 404 UNREGISTERED (the app is gone) and 403 SENDER_ID_MISMATCH are permanent
and mark the push token unusable; 400 INVALID_ARGUMENT is permanent; 401 drops the cached
access token and is temporary; 429, 5xx and a connection that could not be made are temporary.
Once the request went out, no answer in time or a 2xx that is not JSON is in doubt
(`channels.providers.transport`): FCM takes no idempotency key, so it is not sent again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from channels.providers.base import (
    InDoubtDeliveryError,
    OutboundMessage,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from channels.providers.google_auth import ServiceAccount
from channels.providers.transport import limits, transport_error

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_BASE_URL = "https://fcm.googleapis.com"
UNUSABLE_ERRORS = frozenset({"UNREGISTERED", "SENDER_ID_MISMATCH"})


class FcmProvider:
    """`service_account` is the parsed JSON key file (project_id, client_email, private_key, ...)."""

    def __init__(self, service_account: Mapping[str, Any], project_id: str | None = None,
                 base_url: str = FCM_BASE_URL, token_uri: str | None = None, timeout: float = 10.0,
                 *, clock: Callable[[], float], name: str = "fcm", concurrency: int = 1) -> None:
        self.name = name
        self.concurrency = concurrency
        self.project_id = project_id or str(service_account.get("project_id") or "")
        if not self.project_id:
            raise ValueError("fcm: no project_id (in the service account or the configuration)")
        self.url = f"{base_url.rstrip('/')}/v1/projects/{self.project_id}/messages:send"
        self._http = httpx.Client(timeout=timeout, limits=limits(concurrency))
        self.auth = ServiceAccount(service_account, SCOPE, self._http, clock=clock, token_uri=token_uri, label="fcm")

    def __repr__(self) -> str:
        return f"FcmProvider(name={self.name!r}, project_id={self.project_id!r})"

    def close(self) -> None:
        self._http.close()

    def send(self, message: OutboundMessage) -> str:
        if not message.address:
            raise PermanentDeliveryError("no push token", unusable_address=True)
        body = {"message": self.payload(message)}
        headers = self.auth.authorization()
        try:
            response = self._http.post(self.url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise transport_error("fcm", exc) from exc
        if response.status_code == 401:
            self.auth.forget(headers)
        if response.is_success:
            return _message_name(response)
        raise _mapped(response)

    def payload(self, message: OutboundMessage) -> dict[str, Any]:
        content = message.content
        notification = {k: str(content[k]) for k in ("title", "body", "image") if content.get(k)}
        data = {"message_id": message.message_id}
        data.update({str(k): str(v) for k, v in (content.get("data") or {}).items()})
        return {"token": message.address, "notification": notification, "data": data}


def _message_name(response: httpx.Response) -> str:
    """The `name` FCM gives the message it took; a 2xx without one is in doubt."""
    try:
        name = response.json().get("name")
    except (ValueError, AttributeError) as exc:
        raise InDoubtDeliveryError(f"fcm: HTTP {response.status_code}, but not a message: {response.text[:200]}"
                                   ) from exc
    if not name:
        raise InDoubtDeliveryError(f"fcm: HTTP {response.status_code} without a message name")
    return str(name)


def _mapped(response: httpx.Response) -> Exception:
    status, code = _error_code(response)
    reason = f"fcm HTTP {response.status_code}: {code or status}"
    if code in UNUSABLE_ERRORS or response.status_code == 404:
        return PermanentDeliveryError(reason, unusable_address=True)
    if response.status_code in (401, 429) or response.status_code >= 500:
        return TemporaryDeliveryError(reason)
    return PermanentDeliveryError(reason)


def _error_code(response: httpx.Response) -> tuple[str, str | None]:
    """FCM's error: `status` (NOT_FOUND ...) and the FcmError `errorCode` (UNREGISTERED ...)."""
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return "", None
    code = next((d.get("errorCode") for d in error.get("details") or () if d.get("errorCode")), None)
    return str(error.get("status", "")), code
