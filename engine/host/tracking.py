"""Hits on tracked links and open pixels (`GET /l/{code}`, `GET /o/{code}`) become events pinned to
their message, as a provider's receipt is.

Each hit is counted on its link (`Links.hit`), then its event is accepted into the inbox (durable
before the answer; the engine processes it moments later, on the worker that owns the person):

- a link: `<channel>.clicked` with `message_id`, `url`, `clicks` (the link's hits so far),
  `first` (the message's first click by a person, or its first by a machine) and `machine`;
- the pixel: `email.opened` with `message_id`, `opens`, `first` and `machine`.

`machine` is what the User-Agent says (`channels.agents`): a mail proxy, a link preview, a
scanner. Such a hit is counted and recorded but is no engagement: it marks no message opened or
clicked and stops no escalation. Once per message for engagement: the event with `first: true`
and `machine: false`. A code no link has records nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from channels.agents import is_machine
from engine.clock import Clock
from engine.events import Event
from engine.host.logs import fields
from engine.ports import LinkHit, Links
from engine.state import Ingested

log = logging.getLogger("journey.tracking")
CODE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
MAX_CODE = 64  # the policy's `code_length` is at most this


class Tracking:
    """Counts a hit and hands its event to `accept` (the server's `Server.accept`)."""

    def __init__(self, links: Links, clock: Clock, accept: Callable[[Sequence[Event]], list[Ingested]]) -> None:
        self.links = links
        self.clock = clock
        self.accept = accept

    def follow(self, code: str, user_agent: str | None) -> str | None:
        """The URL a link's code leads to, its click recorded; None for a code no link has."""
        hit, machine = self._hit(code, False, user_agent)
        if hit is None or hit.url is None:
            return None
        self._record(hit, "clicked", machine, url=hit.url, clicks=hit.hits)
        return hit.url

    def open(self, code: str, user_agent: str | None) -> bool:
        """Record an open of the email whose pixel has this code; False for a code no pixel has."""
        hit, machine = self._hit(code, True, user_agent)
        if hit is None:
            return False
        self._record(hit, "opened", machine, opens=hit.hits)
        return True

    def _hit(self, code: str, pixel: bool, user_agent: str | None) -> tuple[LinkHit | None, bool]:
        if not code or len(code) > MAX_CODE or not CODE_CHARS.issuperset(code):
            return None, False  # no code we make: not worth a query
        machine = is_machine(user_agent)
        return self.links.hit(code, pixel, machine, self.clock.now()), machine

    def _record(self, hit: LinkHit, status: str, machine: bool, **extra: Any) -> None:
        properties = {"message_id": hit.message_id, **extra, "first": hit.first, "machine": machine}
        self.accept([Event(f"{hit.channel}.{status}", hit.user_id, self.clock.now(), properties)])
        if log.isEnabledFor(logging.INFO):
            log.info(status, extra=fields(message_id=hit.message_id, channel=hit.channel, first=hit.first,
                                          machine=machine))
