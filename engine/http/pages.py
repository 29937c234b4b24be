"""Pages of every user's messages (`GET /v1/messages` without `user_id`): the cursor
(where the last page ended: its last message's time and id) and the page itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from engine.http.views import message_view

CURSOR = r"^([0-9]{1,16}~[^\x00\n]{1,300})?$"
"""Where a page ends: its last message's time (microseconds since 1970, UTC) and id, `~` between,
with no NUL character (the API refuses one in any URL, and the document must say so: a pattern
that let it through was a schema-valid request answered 422).
Every string of this form is a place in the newest-first order (the messages older than it), so
a cursor can be wrong only in its form, which the route refuses by this pattern, naming `cursor`."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def write_cursor(at: datetime, message_id: str) -> str:
    utc = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite's rows: naive UTC
    return f"{(utc - _EPOCH) // _MICRO}~{message_id}"


def read_cursor(cursor: str) -> tuple[datetime, str] | None:
    """The (at, message_id) a page starts after; None for the first page. `cursor` has matched
    CURSOR already (the route's pattern)."""
    if not cursor:
        return None
    micros, _, message_id = cursor.partition("~")
    return _EPOCH + int(micros) * _MICRO, message_id


def message_page(rows: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """`rows`: up to `limit` + 1 messages, newest first; the one beyond the page says there are more."""
    page = rows[:limit]
    last = page[-1] if len(rows) > limit else None
    return {"messages": [message_view(r) for r in page],
            "next_cursor": write_cursor(last["at"], last["message_id"]) if last is not None else None}
