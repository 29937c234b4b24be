"""What both stores show of a message's tracked links (`ReadViews.messages_for_user`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

LINK_FIELDS = ("url", "hits", "machine_hits", "first_hit_at", "last_hit_at")


def with_links(messages: list[dict[str, Any]], links: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each message with its tracked links (`links`, in their order in the message; `url` None: the
    open pixel), without their codes: a code is what records a hit, and no reader of the API has a
    hit to record."""
    shown: dict[str, list[tuple[int, dict[str, Any]]]] = {m["message_id"]: [] for m in messages}
    for row in links:
        if row["message_id"] in shown:
            shown[row["message_id"]].append((row["position"], {k: row[k] for k in LINK_FIELDS}))
    return [{**m, "links": [link for _, link in sorted(shown[m["message_id"]], key=lambda p: p[0])]}
            for m in messages]
