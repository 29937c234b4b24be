"""What the engine did for a user: `GET /v1/messages?user_id=` (their messages with decisions and
delivery status, the sends quiet hours put off, the skipped sends) and
`GET /v1/users/{user_id}/instances` (where each of their journeys is, and what it waits for)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from engine.http.fields import IN_RANGE, query_instant
from engine.http.message_schemas import InstanceList, MessageList, MessagePage
from engine.http.openapi import documented
from engine.http.pages import CURSOR, message_page, read_cursor
from engine.http.routing import JsonRoute, ServerDep, UserId
from engine.http.views import deferred_sends, instance_view, message_view, skip_view
from engine.ports import MessageQuery

router = APIRouter(route_class=JsonRoute)
Whose = Annotated[str | None, Query(description="whose messages (none: every user's, filtered, a page at a time)",
                                    examples=["u1"])]
Filter = Annotated[str | None, Query(max_length=200, description="only messages with this value (without user_id)")]
Instant = Annotated[str | None, Query(description="RFC 3339: messages at or after `since`, before `until` "
                                      "(without user_id)", examples=["2026-01-05T00:00:00Z"], pattern=IN_RANGE,
                                      json_schema_extra={"format": "date-time"})]
Cursor = Annotated[str, Query(max_length=400, pattern=CURSOR,
                              description="`next_cursor` of the previous page (empty: the newest)")]
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="messages per page (without user_id)")]


@router.get("/v1/users/{user_id}/instances", operation_id="listInstances", tags=["instances"],
            **documented(InstanceList))
def list_instances(user_id: UserId, server: ServerDep) -> dict[str, Any]:
    """Each instance with where it is and, while it waits on a timer, for what and until when."""
    return {"instances": [instance_view(i) for i in server.store.views.instances_for_user(user_id)]}


@router.get("/v1/messages", operation_id="listMessages", tags=["messages"],
            **documented(MessageList | MessagePage))
def list_messages(server: ServerDep, user_id: Whose = None, journey: Filter = None, step: Filter = None,
                  channel: Filter = None, status: Filter = None, since: Instant = None, until: Instant = None,
                  cursor: Cursor = "", limit: Limit = DEFAULT_LIMIT) -> dict[str, Any]:
    """With `user_id`: the user's latest messages with their decisions and delivery status (a
    pending one with its next attempt), the sends quiet hours put off (`deferred`, with when they
    are decided again), and the skipped sends. Without: every user's messages that match the
    filters (`since` included, `until` excluded), newest first, a page at a time: pass
    `next_cursor` back as `cursor` for the next (null: no more)."""
    if user_id is None:
        query = MessageQuery(journey, step, channel, status, query_instant(since, "since"),
                             query_instant(until, "until"), read_cursor(cursor))
        return message_page(server.store.views.find_messages(query, limit + 1), limit)
    return {"messages": [message_view(m) for m in server.store.views.messages_for_user(user_id)],
            "deferred": deferred_sends(server, user_id),
            "skipped": [skip_view(s) for s in server.store.views.skips_for_user(user_id)]}
