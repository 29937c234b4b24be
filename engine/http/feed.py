"""The in-app feed: `GET /v1/users/{user_id}/feed` (newest first, paged by `next_cursor`, with the
unread count), `POST /v1/users/{user_id}/feed/{message_id}/seen|read|archived` and, without a
message id, the same for every message of the feed; `GET /v1/users/{user_id}/key`, the person's
user key, which opens these routes (and their preferences) for a browser or an app.

Each change is an event (`in_app.seen`, `in_app.read`, `in_app.archived`, the message's id in its
properties and in its own id, so a retry is a duplicate): journeys wait for it, it sets the
message's status and counts as engagement where the policy says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from engine.errors import HttpError
from engine.events import Event
from engine.host.server import Server
from engine.http.message_schemas import Feed, FeedMarked, MarkedAll, UserKey
from engine.http.openapi import documented
from engine.http.routing import JsonRoute, ServerDep, UserId
from engine.http.views import feed_item

router = APIRouter(route_class=JsonRoute, tags=["feed"])
PAGE = 50
MAX_PAGE = 200
MAX_MARK_ALL = 10_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR = r"^([0-9]{1,16}:[^\x00]{1,200})?$"


class State(StrEnum):
    seen = "seen"
    read = "read"
    archived = "archived"


StatePath = Annotated[State, Path(description="seen, read (which sees it too) or archived")]


@router.get("/v1/users/{user_id}/feed", operation_id="getFeed", **documented(Feed, 403, 422))
def get_feed(user_id: UserId, server: ServerDep,
             limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="items per page")] = PAGE,
             cursor: Annotated[str | None, Query(pattern=CURSOR, description="`next_cursor` of the page "
                                                   "before (empty: the first page)")]
             = None, archived: Annotated[bool, Query(description="include archived messages")] = False,
             ) -> dict[str, Any]:
    """The person's in-app messages, newest first, with what they did to each, and how many are
    unread (neither read nor archived). Opens with the API key or the person's user key."""
    rows = server.store.feed.feed_items(user_id, _cursor(cursor), limit + 1, archived)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [feed_item(r) for r in rows], "unread_count": server.store.feed.feed_unread(user_id),
            "next_cursor": _encode(rows[-1]) if more else None}


@router.post("/v1/users/{user_id}/feed/{message_id}/{state}", operation_id="markFeedMessage",
             **documented(FeedMarked, 403, 404))
def mark_message(user_id: UserId, message_id: Annotated[str, Path(max_length=200)], state: StatePath,
                 server: ServerDep) -> dict[str, Any]:
    """One message of the feed marked seen, read or archived (again: no change). 404 when the
    person's feed holds no such message."""
    now = server.clock.now()
    changed = server.store.feed.mark_feed(user_id, [message_id], state.value, now)
    if not changed and not _in_feed(server, user_id, message_id):
        raise HttpError(404, f"user '{user_id}' has no in-app message '{message_id}' in their feed")
    _tell(server, user_id, [message_id], state.value, now)
    row = next(r for r in server.store.feed.feed_items(user_id, None, MAX_MARK_ALL, archived=True)
               if r["message_id"] == message_id)
    return {**feed_item(row), "unread_count": server.store.feed.feed_unread(user_id)}


@router.post("/v1/users/{user_id}/feed/{state}", operation_id="markFeed", **documented(MarkedAll, 403))
def mark_all(user_id: UserId, state: StatePath, server: ServerDep) -> dict[str, Any]:
    """Every message of the feed marked seen, read or archived (those that already were are left)."""
    now = server.clock.now()
    changed = server.store.feed.mark_feed(user_id, None, state.value, now)
    _tell(server, user_id, changed[-MAX_MARK_ALL:], state.value, now)
    return {"marked": len(changed), "unread_count": server.store.feed.feed_unread(user_id)}


@router.get("/v1/users/{user_id}/key", operation_id="getUserKey", **documented(UserKey, 403))
def user_key(user_id: UserId, request: Request) -> dict[str, Any]:
    """The person's user key (API key only): it opens their feed and preferences and nothing else."""
    return {"user_id": user_id, "key": request.app.state.user_keys.key_for(user_id)}


def _tell(server: Server, user_id: str, message_ids: list[str], state: str, now: datetime) -> None:
    """The changes as events, processed before the answer (a retry's are duplicates)."""
    events = [Event(f"in_app.{state}", user_id, now, {"message_id": m}, f"in_app:{m}:{state}") for m in message_ids]
    if events:
        server.ingest(events)


def _in_feed(server: Server, user_id: str, message_id: str) -> bool:
    return any(r["message_id"] == message_id for r in server.store.feed.feed_items(user_id, None, MAX_MARK_ALL, True))


def _encode(row: dict[str, Any]) -> str:
    """`<microseconds since 1970>:<message_id>` of the last item: where the next page starts."""
    return f"{(row['at'] - EPOCH) // timedelta(microseconds=1)}:{row['message_id']}"


def _cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:  # none, or empty: the first page
        return None
    micros, _, message_id = cursor.partition(":")
    return EPOCH + timedelta(microseconds=int(micros)), message_id
