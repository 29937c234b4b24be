"""The provider interface and its error tree::

    DeliveryError (Exception)
    ├── TemporaryDeliveryError   worth retrying (timeout, 5xx, rate limit)
    └── PermanentDeliveryError   never deliverable (bad address, unsubscribed, rejected)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from channels.values import quick_init


class DeliveryError(Exception):
    """A provider could not take a message."""


class TemporaryDeliveryError(DeliveryError):
    """Try again later: the same message may well go through."""


class PermanentDeliveryError(DeliveryError):
    """Do not retry; `unusable_address` says the recipient's address should be dropped."""

    def __init__(self, message: str, unusable_address: bool = False) -> None:
        super().__init__(message)
        self.unusable_address = unusable_address


@quick_init
@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One rendered message on its way out, with the address it goes to."""

    message_id: str
    user_id: str
    channel: str
    category: str
    content: Mapping[str, Any]
    address: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "user_id": self.user_id, "channel": self.channel,
                "category": self.category, "to": self.address, "content": dict(self.content)}


class Provider(Protocol):
    """A provider may also say `idempotent = True`: every attempt carries an idempotency key, so a
    send a crash caught mid-call is retried rather than left `unknown`. One that buffers what it
    sends has a `flush()` (raising a DeliveryError if it cannot): the dispatcher calls it after
    each group of sends, before it records any of them sent."""

    name: str

    def send(self, message: OutboundMessage) -> str:
        """Deliver or raise a DeliveryError; returns the provider's id for the message."""
        ...
