"""One attempt of one message through its channel's providers, and the row it comes to.

The providers are tried in failover order while they fail before taking the message
(`TemporaryDeliveryError`). A permanent error fails the message. Once a provider may have taken
it (`InDoubtDeliveryError`, or any exception a provider did not map: the dispatcher cannot tell
whether the request went out) no other provider is tried: the message is `unknown`, never sent
again, unless every provider of its channel drops a duplicate by idempotency key, in which case
it is retried as after a temporary error. Attempts run on the providers' own threads
(`engine.host.lanes`), so nothing here counts or logs a tally: the dispatcher does, once the
result is recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from channels.providers import (
    DeliveryError,
    InDoubtDeliveryError,
    OutboundMessage,
    PermanentDeliveryError,
    Provider,
    TemporaryDeliveryError,
)
from engine.clock import Clock
from engine.host.logs import fields
from engine.ports import OutboxItem

log = logging.getLogger("journey.dispatcher")

BACKOFF = (timedelta(seconds=1), timedelta(seconds=5), timedelta(seconds=30), timedelta(minutes=2),
           timedelta(minutes=10))
MAX_ATTEMPTS = len(BACKOFF) + 1
NOT_RESENT = "the provider may have taken it; not sent again to avoid a duplicate"
RESENT = "the provider may have taken it; retried with its idempotency key"

Gate = Callable[[Provider], AbstractContextManager[object]]


def attempt(item: OutboxItem, chain: Sequence[Provider], idempotent: bool, clock: Clock, now: datetime,
            gate: Gate) -> dict[str, Any]:
    """Hand `item` to the first provider of `chain` that takes it; the row's new state. `gate(p)`
    is held around each call to provider `p` (its concurrency); `now`: when the batch began."""
    message = OutboundMessage(item.message_id, item.user_id, item.channel, item.category, item.content,
                              item.address)
    attempts = item.attempts + 1
    error = "no provider for this channel"
    for provider in chain:
        try:
            with gate(provider):
                provider_id = provider.send(message)
        except TemporaryDeliveryError as exc:
            error = f"{provider.name}: {exc}"
            log.warning("temporary failure", extra=fields(message_id=item.message_id, channel=item.channel,
                                                          provider=provider.name, error=str(exc)))
            continue
        except PermanentDeliveryError as exc:
            failed = result(item, "failed", "failed", attempts, None, provider.name, None, str(exc), now)
            return {**failed, "unusable_address": exc.unusable_address}
        except Exception as exc:  # noqa: BLE001 - in doubt: one provider's trouble must not sink the batch
            return _in_doubt(item, provider, exc, attempts, idempotent, now)
        # status_at: when the provider took it, not when the batch began
        return result(item, "sent", "sent", attempts, None, provider.name, provider_id, None, clock.now())
    return retry_or_give_up(item, attempts, error, now)


def _in_doubt(item: OutboxItem, provider: Provider, exc: Exception, attempts: int, idempotent: bool,
              now: datetime) -> dict[str, Any]:
    """The provider may have the message: retried only where it drops a duplicate, else `unknown`."""
    reason = str(exc) if isinstance(exc, InDoubtDeliveryError) else f"{type(exc).__name__}: {exc}"
    log_fields = fields(message_id=item.message_id, channel=item.channel, provider=provider.name, error=reason)
    if isinstance(exc, InDoubtDeliveryError):
        log.warning("in doubt: the provider may have taken the message", extra=log_fields)
    else:
        log.error("provider raised: in doubt", exc_info=exc, extra=log_fields)
    error = f"{provider.name}: {reason}; {RESENT if idempotent else NOT_RESENT}"
    if idempotent:
        return retry_or_give_up(item, attempts, error, now)
    return result(item, "unknown", "unknown", attempts, None, provider.name, None, error, now)


def retry_or_give_up(item: OutboxItem, attempts: int, error: str, now: datetime) -> dict[str, Any]:
    """No provider took it this time: tried again after a backoff, or failed once out of attempts."""
    if attempts >= MAX_ATTEMPTS:
        return result(item, "failed", "failed", attempts, None, None, None, f"gave up: {error}", now)
    return result(item, "pending", "queued", attempts, now + BACKOFF[attempts - 1], None, None, error, now)


def unflushed(item: OutboxItem, row: dict[str, Any], error: DeliveryError, now: datetime) -> dict[str, Any]:
    """A send whose provider took it into a buffer it then could not hand over (the outbox file on
    a full disk): not sent after all, so tried again later as after a temporary failure."""
    reason = f"{row['provider']}: {error}"
    log.warning("temporary failure", extra=fields(message_id=item.message_id, channel=item.channel,
                                                  provider=row["provider"], error=str(error)))
    return retry_or_give_up(item, row["attempts"], reason, now)


def outcome(row: dict[str, Any]) -> str:
    """The `status` label of `journey_messages_total`: sent, failed, cancelled, unknown, or for a
    message still pending, deferred (quiet hours) or retried (tried again later)."""
    if row["dispatch"] != "pending":
        return str(row["dispatch"])
    return "deferred" if row["error"] == "quiet hours" else "retried"


def result(item: OutboxItem, dispatch: str, status: str, attempts: int, retry_at: datetime | None,
           provider: str | None, provider_id: str | None, error: str | None, now: datetime) -> dict[str, Any]:
    return {"message_id": item.message_id, "dispatch": dispatch, "status": status, "attempts": attempts,
            "next_attempt_at": retry_at, "provider": provider, "provider_id": provider_id, "error": error,
            "at": now}
