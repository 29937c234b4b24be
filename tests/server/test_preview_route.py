"""`POST /v1/journeys/{id}/messages/{message}/preview` over HTTP: a message rendered for a stored
person or one given in the body, per channel, with encoding, segments and cost; nothing stored."""

from __future__ import annotations

from pathlib import Path

from tests.engine.test_preview import EVENT, JOURNEY
from tests.server.conftest import StartLocal, put_profile

ROUTE = "/v1/journeys/reminders/messages/reminder/preview"


def test_a_stored_person_gets_their_variant_with_its_cost_and_nothing_is_stored(
        start_local: StartLocal, journeys_dir: Path, any_db: str) -> None:
    (journeys_dir / "reminders.yaml").write_text(JOURNEY, encoding="utf-8")
    local = start_local(db=any_db)
    put_profile(local, "ada", "sms:transactional", locale="fr-FR", timezone="Europe/Paris")
    reply = local.client.post(ROUTE, json={"user_id": "ada", "event": EVENT, "channels": ["sms"]})
    assert reply.status_code == 200, reply.text
    [sms] = reply.json()["channels"]
    assert sms == {"channel": "sms", "locale": "fr", "content": {"text": "jeudi 12 mars à 16:30 avec Dr. Patel"},
                   "error": None, "encoding": "GSM-7", "segments": 1, "cost": 0.0083, "eligible": True,
                   "reason": None}
    local.settle()
    assert local.messages("ada") == []
    assert local.client.get("/v1/users/ada/instances").json()["instances"] == []


def test_a_person_given_in_the_body_and_the_errors_a_caller_can_make(start_local: StartLocal,
                                                                      journeys_dir: Path) -> None:
    (journeys_dir / "reminders.yaml").write_text(JOURNEY, encoding="utf-8")
    local = start_local()
    person = {"user_id": "bo", "locale": "en-US", "timezone": "America/Chicago", "phone": "+13125550100"}
    reply = local.client.post(ROUTE, json={"profile": person, "event": EVENT})
    assert reply.status_code == 200, reply.text
    channels = {c["channel"]: c for c in reply.json()["channels"]}
    assert channels["sms"]["content"]["text"] == "Thursday, March 12 at 10:30 AM with Dr. Patel"
    assert (channels["sms"]["eligible"], channels["sms"]["reason"]) == (False, "no_consent")
    assert (channels["email"]["eligible"], channels["email"]["reason"]) == (False, "no_address")
    assert local.client.post(ROUTE, json={"user_id": "nobody"}).status_code == 404
    assert local.client.post(ROUTE.replace("reminder/", "remnder/"), json={"profile": person}).status_code == 404
    both = local.client.post(ROUTE, json={"user_id": "bo", "profile": person})
    assert both.status_code == 422 and "either user_id" in both.text
