"""Channel providers: send a rendered message, return the provider's message id.

Every vendor error is mapped to `TemporaryDeliveryError` (retried with backoff) or
`PermanentDeliveryError` (becomes a `<channel>.failed` event), raised `from` the original.
"""

from channels.providers.base import (
    DeliveryError,
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
    "OutboundMessage",
    "PermanentDeliveryError",
    "Provider",
    "TemporaryDeliveryError",
]
