"""What the engine did for a user: `GET /v1/messages?user_id=` (their messages with decisions and
delivery status, the sends quiet hours put off, the skipped sends) and
`GET /v1/users/{user_id}/instances` (where each of their journeys is, and what it waits for)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from engine.http.message_schemas import InstanceList, MessageList
from engine.http.openapi import documented
from engine.http.routing import JsonRoute, ServerDep, UserId
from engine.http.views import deferred_sends, instance_view, message_view, skip_view

router = APIRouter(route_class=JsonRoute)
Whose = Annotated[str, Query(description="whose messages", examples=["u1"])]


@router.get("/v1/users/{user_id}/instances", operation_id="listInstances", tags=["instances"],
            **documented(InstanceList))
def list_instances(user_id: UserId, server: ServerDep) -> dict[str, Any]:
    """Each instance with where it is and, while it waits on a timer, for what and until when."""
    return {"instances": [instance_view(i) for i in server.store.views.instances_for_user(user_id)]}


@router.get("/v1/messages", operation_id="listMessages", tags=["messages"], **documented(MessageList))
def list_messages(user_id: Whose, server: ServerDep) -> dict[str, Any]:
    """The user's latest messages with their decisions and delivery status (a pending one with
    its next attempt), the sends quiet hours put off (`deferred`, with when they are decided
    again), and the skipped sends."""
    return {"messages": [message_view(m) for m in server.store.views.messages_for_user(user_id)],
            "deferred": deferred_sends(server, user_id),
            "skipped": [skip_view(s) for s in server.store.views.skips_for_user(user_id)]}
