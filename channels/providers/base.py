"""The provider interface and its error tree::

    DeliveryError (Exception)
    ├── TemporaryDeliveryError   not taken, worth retrying (refused connection, 5xx, rate limit)
    ├── PermanentDeliveryError   never deliverable (bad address, unsubscribed, rejected)
    └── InDoubtDeliveryError     may have been taken (no answer once the request went out, an
                                 answer it could not read): retried only with an idempotency key
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


class InDoubtDeliveryError(DeliveryError):
    """The request went out and the provider may well have taken the message, but it never said so
    in a way we could read (a timeout waiting for its answer, a 2xx whose body is not what it
    documents). Sending it again may deliver it twice: the dispatcher leaves it `unknown`, unless
    every provider of its channel drops a duplicate by idempotency key."""


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
    send a crash caught mid-call, or one in doubt, is retried rather than left `unknown`; and
    `concurrency = N`: how many messages it may be handed at once, each from its own thread (1
    unless it says more, so a provider written for one caller at a time is only ever called so).
    One that buffers what it sends has a `flush()` (raising a DeliveryError if it cannot): the
    dispatcher calls it, holding one of its permits, before it records any of its sends sent."""

    name: str

    def send(self, message: OutboundMessage) -> str:
        """Deliver or raise a DeliveryError; returns the provider's id for the message."""
        ...
