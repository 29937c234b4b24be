"""The routes of a person's rights and of the consent audit trail:

- `DELETE /v1/profiles/{user_id}`: erasure (204; 404 when nothing at all is held under that id,
  so a typo is noticed; erasing again answers 204);
- `GET /v1/profiles/{user_id}/export`: everything held about the person, one JSON document;
- `GET /v1/consents?since=&limit=&cursor=`: the consent audit trail, a page at a time: every
  user's consent ledger rows and the suppression list's rows (a STOP or START from a number,
  `user_id` null), each in the order written. The cursor is `<ledger position>:<suppression
  position>`, the last rows of each returned (the SQL store's row ids), in decimal: callers pass
  `next_cursor` back as it came; an empty one is the start. Being two numbers, it is described by a
  pattern in the OpenAPI document, so a request the document allows is one the server takes.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Path, Query
from fastapi.responses import Response

from engine.errors import EventError, HttpError
from engine.events import format_time, parse_time
from engine.host.privacy import erase_user
from engine.host.server import Server
from engine.http import schemas as doc
from engine.http.bodies import IN_RANGE
from engine.http.openapi import documented
from engine.http.views import message_view, skip_view
from engine.stores.privacy import consent_trail

EVERYTHING = 2**31 - 1  # an export lists every message and skip, not the API's latest 200
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
CURSOR = r"^([0-9]{1,18}:[0-9]{1,18})?$"  # a position in each ledger; empty: the start


def add_privacy_routes(app: FastAPI, server: Server) -> None:
    """Called by `create_app` once the app exists."""

    user = Path(description="the user's id, as in their events", examples=["u1"])

    @app.delete("/v1/profiles/{user_id}", **documented(None, 404, status=204, description="Erased"))
    def erase_profile(user_id: str = user) -> Response:
        """Erase the person: profile, instances (ended `exited`, reason `erased`), queued events,
        their messages' content (pending sends cancelled); the consent ledger stays as proof."""
        if erase_user(server, user_id) is None:
            raise HttpError(404, f"nothing is held about user '{user_id}'")
        return Response(status_code=204)

    @app.get("/v1/profiles/{user_id}/export", **documented(doc.Export, 404))
    def export_profile(user_id: str = user) -> dict[str, Any]:
        """Everything held about the person: profile, consent ledger, suppression rows for their
        number, messages with decisions, skipped sends, instances."""
        store = server.store
        with server.lock, store.transaction() as tx:
            profile = tx.get_profile(user_id)
        consents = [c.to_dict() for c in store.privacy.consent_ledger(user_id)]
        messages = [message_view(m) for m in store.views.messages_for_user(user_id, EVERYTHING)]
        skipped = [skip_view(s) for s in store.views.skips_for_user(user_id, EVERYTHING)]
        instances = [i.to_dict() for i in store.views.instances_for_user(user_id)]
        if profile is None and not (consents or messages or skipped or instances):
            raise HttpError(404, f"nothing is held about user '{user_id}'")
        fields = {k: v for k, v in profile.to_dict().items() if k != "consents"} if profile else None
        phone = profile.phone if profile else None
        return {"user_id": user_id, "profile": fields, "consents": consents,
                "suppressions": store.privacy.suppressions_for(phone) if phone else [], "messages": messages,
                "skipped": skipped, "instances": instances, "exported_at": format_time(server.clock.now())}

    @app.get("/v1/consents", **documented(doc.ConsentFeed))
    def consent_feed(since: str | None = Query(None, description="RFC 3339: only changes recorded at or after it",
                                               examples=["2026-01-01T00:00:00Z"], pattern=IN_RANGE,
                                               json_schema_extra={"format": "date-time"}),
                     limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="rows per page"),
                     cursor: str = Query("", description="`next_cursor` of the previous page (empty: the start)",
                                         pattern=CURSOR)) -> dict[str, Any]:
        """Ledger rows of all users and the suppression list's rows (`user_id` null, `number`) in
        write order; `next_cursor` is null once there are no more."""
        try:
            start = parse_time(since, "since") if since is not None else None
        except EventError as exc:
            raise HttpError(422, str(exc)) from None
        ledger, _, numbers = cursor.partition(":")
        page, position = consent_trail(server.store.privacy, start, (int(ledger or 0), int(numbers or 0)), limit)
        return {"consents": [entry.to_dict() for entry in page],
                "next_cursor": f"{position[0]}:{position[1]}" if position is not None else None}
