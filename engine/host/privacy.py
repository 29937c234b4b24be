"""Erasing a person (GDPR art. 17) while the server runs.

The store does the erasing (`Privacy.erase_user`); the host contributes what only it knows:
the engine ends the person's active instances (`exited`, reason `erased`, timers cancelled)
inside the same transaction, in the engine's turn, and the backlog forgets the queued events
the erasure deleted, so nothing waits for them. The local outbox file (the file provider, the
default with no providers file) loses the person's lines too; what a real provider was handed
is the provider's to erase.
"""

from __future__ import annotations

import logging

from channels.providers import FileProvider
from channels.providers.config import providers_of
from engine.host.server import Server
from engine.ports import ERASED, Erasure, Tx, carry_out

log = logging.getLogger("journey.privacy")


def erase_user(server: Server, user_id: str) -> Erasure | None:
    """Erase everything held about `user_id` but the proof of past consent; None when nothing is
    held under that id. Later events for the user start afresh (no profile, consent or history)."""
    now = server.clock.now()
    runtime = server.engine.runtime

    def end_instances(tx: Tx) -> None:
        for instance in list(tx.active_instances(user_id)):
            carry_out(tx, runtime.end(instance, "exited", ERASED, now), instance)

    with server.lock:
        erasure = server.store.privacy.erase_user(user_id, now, end_instances)
    if erasure is not None:
        for outbox in providers_of(server.dispatcher.providers, FileProvider):  # the local outbox file too
            outbox.forget(user_id)
        if erasure.queued:
            server.backlog.withdraw([user_id] * erasure.queued)
        log.info("erased user %s: %d instances, %d queued events, %d messages (%d cancelled)", user_id,
                 erasure.instances, erasure.queued, erasure.messages, erasure.cancelled)
    return erasure
