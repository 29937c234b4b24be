"""Channel providers: send a rendered message, return the provider's message id.

Every vendor error is mapped to `TemporaryDeliveryError` (retried with backoff),
`PermanentDeliveryError` (becomes a `<channel>.failed` event) or `InDoubtDeliveryError` (the
request went out and the provider may have taken it: `unknown`, never sent again unless the
channel's providers take idempotency keys), raised `from` the original.
"""

from channels.providers.base import (
    DeliveryError,
    InDoubtDeliveryError,
    OutboundMessage,
    PermanentDeliveryError,
    Provider,
    TemporaryDeliveryError,
)
from channels.providers.local import ConsoleProvider, FileProvider

__all__ = [
    "ConsoleProvider",
    "DeliveryError",
    "FileProvider",
    "InDoubtDeliveryError",
    "OutboundMessage",
    "PermanentDeliveryError",
    "Provider",
    "TemporaryDeliveryError",
]
