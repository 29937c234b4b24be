"""The preference centre: `GET` and `PUT /v1/users/{user_id}/preferences`, with the API key or the
person's user key (engine/http/user_keys.py). Preferences are kept with the profile (a `PUT` of the
profile keeps them) and are apart from consent, which stays the legal record: a channel turned off
is ineligible with reason `preference_off` (channels/preferences.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter

from channels import Profile
from engine.http.bodies import PreferencesIn
from engine.http.message_schemas import PreferencesOut
from engine.http.openapi import documented
from engine.http.routing import JsonRoute, ServerDep, UserId

router = APIRouter(route_class=JsonRoute, tags=["preferences"])


@router.get("/v1/users/{user_id}/preferences", operation_id="getPreferences", **documented(PreferencesOut, 403))
def get_preferences(user_id: UserId, server: ServerDep) -> dict[str, Any]:
    """What the person turned off (nothing said: everything on)."""
    with server.lock, server.store.transaction() as tx:
        profile = tx.get_profile(user_id)
    return (profile or Profile(user_id)).preferences.to_dict()


@router.put("/v1/users/{user_id}/preferences", operation_id="putPreferences",
            **documented(PreferencesOut, 403, 422))
def put_preferences(user_id: UserId, body: PreferencesIn, server: ServerDep) -> dict[str, Any]:
    """Replace the person's preferences (a person with no profile yet gets one holding them)."""
    preferences = body.to_preferences()
    with server.lock, server.store.transaction() as tx:
        profile = tx.get_profile(user_id) or Profile(user_id)
        tx.put_profile(replace(profile, preferences=preferences))
    return preferences.to_dict()
