"""The routes of a person's rights:

- `DELETE /v1/profiles/{user_id}`: erasure (204; 404 when nothing at all is held under that id,
  so a typo is noticed; erasing again answers 204);
- `GET /v1/profiles/{user_id}/export`: everything held about the person, one JSON document.

(The consent audit trail, `GET /v1/consents`, is in `engine.http.consents`.)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from engine.errors import HttpError
from engine.events import format_time
from engine.host.privacy import erase_user
from engine.http.openapi import documented
from engine.http.routing import JsonRoute, ServerDep, UserId
from engine.http.schemas import Export
from engine.http.views import feed_item, message_view, skip_view

router = APIRouter(route_class=JsonRoute, tags=["privacy"])
EVERYTHING = 2**31 - 1  # an export lists every message and skip, not the API's latest 200


@router.delete("/v1/profiles/{user_id}", operation_id="eraseProfile",
               **documented(None, 404, status=204, description="Erased"))
def erase_profile(user_id: UserId, server: ServerDep) -> Response:
    """Erase the person: profile, instances (ended `exited`, reason `erased`), queued events,
    their messages' content (pending sends cancelled); the consent ledger stays as proof."""
    if erase_user(server, user_id) is None:
        raise HttpError(404, f"nothing is held about user '{user_id}'")
    return Response(status_code=204)


@router.get("/v1/profiles/{user_id}/export", operation_id="exportProfile", **documented(Export, 404))
def export_profile(user_id: UserId, server: ServerDep) -> dict[str, Any]:
    """Everything held about the person: profile, consent ledger, suppression rows for their
    number, messages with decisions, skipped sends, instances, their in-app feed with what they did
    to each message."""
    store = server.store
    with server.lock, store.transaction() as tx:
        profile = tx.get_profile(user_id)
    consents = [c.to_dict() for c in store.privacy.consent_ledger(user_id)]
    messages = [message_view(m) for m in store.views.messages_for_user(user_id, EVERYTHING)]
    skipped = [skip_view(s) for s in store.views.skips_for_user(user_id, EVERYTHING)]
    instances = [i.to_dict() for i in store.views.instances_for_user(user_id)]
    feed = [feed_item(row) for row in store.feed.feed_items(user_id, None, EVERYTHING, archived=True)]
    if profile is None and not (consents or messages or skipped or instances):
        raise HttpError(404, f"nothing is held about user '{user_id}'")
    fields = {k: v for k, v in profile.to_dict().items() if k != "consents"} if profile else None
    phone = profile.phone if profile else None
    return {"user_id": user_id, "profile": fields, "consents": consents,
            "suppressions": store.privacy.suppressions_for(phone) if phone else [], "messages": messages,
            "skipped": skipped, "instances": instances, "feed": feed, "exported_at": format_time(server.clock.now())}
