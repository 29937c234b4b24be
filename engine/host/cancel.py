"""Cancelling from outside: `POST /v1/journeys/{id}/instances/cancel` ends a user's instances of a
journey (those with a given instance key, or all of them), as Knock's cancellation key does.

Each matching active instance ends `exited`, reason `cancelled_by_api`, in one engine turn: its
timer is cancelled, so no later step runs and nothing more is sent; its messages still waiting in
the outbox (not yet handed to a provider) are cancelled too. A repeat finds nothing active and
answers with the same instances, already cancelled: the route is idempotent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from engine.host.server import Server
from engine.ports import carry_out
from engine.state import Instance

CANCELLED_BY_API = "cancelled_by_api"
log = logging.getLogger("journey.server")


@dataclass(frozen=True, slots=True)
class Cancelled:
    """The user's instances of the journey (with the key) that the cancel route has ended, by
    this call or an earlier one, oldest first; `messages` counts the outbox's cancelled now."""

    instances: list[Instance]
    ended: int
    messages: int


def cancel_instances(server: Server, journey_id: str, user_id: str, key: str | None) -> Cancelled:
    """End the user's active instances of `journey_id` whose instance key is `key` (any key when
    None), and cancel their unsent messages."""
    server.deploys.known(journey_id)
    engine = server.engine
    now = server.clock.now()
    ended: list[str] = []
    with server.lock, engine.unit() as tx:
        engine.recall.prefetch(tx, {user_id}, now)
        for instance in list(tx.active_instances(user_id)):
            if instance.journey_id == journey_id and (key is None or instance.key == key):
                carry_out(tx, engine.runtime.end(instance, "exited", CANCELLED_BY_API, now), instance)
                ended.append(instance.instance_id)
    held = server.store.journeys.cancel_pending(journey_id, CANCELLED_BY_API, now, ended) if ended else 0
    if ended:
        log.info("cancelled %d instances of journey %s (%d unsent messages)", len(ended), journey_id, held)
    mine = [i for i in server.store.views.instances_for_user(user_id) if i.journey_id == journey_id
            and i.reason == CANCELLED_BY_API and (key is None or i.key == key)]
    return Cancelled(mine, len(ended), held)
