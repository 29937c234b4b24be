"""Pages of every user's messages (`GET /v1/messages` without `user_id`): the opaque cursor
(where the last page ended: its last message's time and id, base64url) and the page itself."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from engine.errors import HttpError
from engine.http.views import message_view

CURSOR = r"^[A-Za-z0-9_=-]*$"


def write_cursor(at: datetime, message_id: str) -> str:
    utc = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite's rows: naive UTC
    text = f"{utc.isoformat()}|{message_id}"
    return base64.urlsafe_b64encode(text.encode()).decode()


def read_cursor(cursor: str) -> tuple[datetime, str] | None:
    """The (at, message_id) a page starts after; None for the first page."""
    if not cursor:
        return None
    try:
        at, _, message_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        when = datetime.fromisoformat(at)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise HttpError(422, "cursor: not one this server gave (pass next_cursor back as it came)") from None
    if not message_id or when.tzinfo is None:
        raise HttpError(422, "cursor: not one this server gave (pass next_cursor back as it came)")
    return when.astimezone(UTC), message_id


def message_page(rows: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """`rows`: up to `limit` + 1 messages, newest first; the one beyond the page says there are more."""
    page = rows[:limit]
    last = page[-1] if len(rows) > limit else None
    return {"messages": [message_view(r) for r in page],
            "next_cursor": write_cursor(last["at"], last["message_id"]) if last is not None else None}
