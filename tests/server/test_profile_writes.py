"""Profile writes as a user of the API sees them: `PUT` replaces, `PATCH` merges, bulk upserts take
the 10,000 profiles the docs promise, a consent that changes nothing is not a new ledger row, a
malformed email is refused by name, and consent for a user with no profile is a 404."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from channels import load_policy
from engine.cli import app
from engine.host import Server
from engine.http import create_app
from engine.stores.memory import MemoryStore
from tests.server.conftest import LocalServer, StartServer, put_profile, server_env

SMS_MARKETING = {"channel": "sms", "category": "marketing", "granted": True, "source": "import"}


def ledger(local: LocalServer, user_id: str) -> list[dict[str, Any]]:
    reply = local.client.get(f"/v1/profiles/{user_id}")
    assert reply.status_code == 200, reply.text
    consents: list[dict[str, Any]] = reply.json()["consents"]
    return consents


def test_ten_thousand_minimal_profiles_go_in_one_request(local: LocalServer) -> None:
    profiles = [{"user_id": f"user-{n:05d}", "email": f"user-{n:05d}@example.com", "phone": "+14155550100",
                 "timezone": "UTC"} for n in range(10_000)]
    body = json.dumps({"profiles": profiles}).encode()
    assert len(body) > 1024 * 1024  # over the other routes' limit
    reply = local.client.post("/v1/profiles", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 200, reply.text[:500]
    assert reply.json() == {"upserted": 10_000, "rejected": []}
    assert local.client.get("/v1/profiles/user-09999").json()["email"] == "user-09999@example.com"


def test_body_limits_follow_the_route_and_come_from_the_environment(start_server: StartServer) -> None:
    env = {**server_env(), "JOURNEY_MAX_BODY_BYTES": "2048", "JOURNEY_MAX_BULK_BODY_BYTES": "8192"}
    server = start_server(env=env)
    padding = "x" * 3000
    bulk = server.client.post("/v1/profiles", json={"profiles": [{"user_id": "u1", "attributes": {"note": padding}}]})
    assert bulk.status_code == 200, bulk.text
    one = server.client.put("/v1/profiles/u2", json={"attributes": {"note": padding}})
    assert one.status_code == 413 and "2048 byte limit" in one.json()["detail"]
    big = {"profiles": [{"user_id": "u3", "attributes": {"note": padding * 3}}]}
    over = server.client.post("/v1/profiles", json=big)
    assert over.status_code == 413 and "8192 byte limit" in over.json()["detail"]


def test_two_apps_in_one_process_keep_their_own_body_limits() -> None:
    """The routers are shared by every app made in the process; the limits are each app's own."""
    server = Server(MemoryStore(), [], load_policy())
    note = {"attributes": {"note": "x" * 3000}}
    with TestClient(create_app(server, max_body=2048, bulk_max_body=8192)) as small, \
            TestClient(create_app(server)) as default:
        refused = small.put("/v1/profiles/u1", json=note)
        assert refused.status_code == 413 and "2048 byte limit" in refused.json()["detail"]
        assert default.put("/v1/profiles/u1", json=note).status_code == 200
        assert small.post("/v1/profiles", json={"profiles": [{"user_id": "u2", **note}]}).status_code == 200


def test_a_bad_body_limit_in_the_environment_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--db", f"sqlite:///{tmp_path / 'j.db'}"],
                                env={"JOURNEY_MAX_BULK_BODY_BYTES": "lots"})
    assert result.exit_code == 1
    assert "JOURNEY_MAX_BULK_BODY_BYTES='lots': a whole number of bytes" in result.stderr


def test_importing_the_same_profiles_twice_appends_no_consent(local: LocalServer) -> None:
    batch = {"profiles": [{"user_id": f"u{n}", "phone": "+14155550100", "consents": [SMS_MARKETING]}
                          for n in range(3)]}
    for _ in range(2):  # no `at`: each import stamps its own time, yet nothing changed
        assert local.client.post("/v1/profiles", json=batch).json()["upserted"] == 3
    assert len(ledger(local, "u1")) == 1
    put_profile(local, "u1", phone="+14155550100", consents=[SMS_MARKETING])  # PUT alike
    assert len(ledger(local, "u1")) == 1
    revoke = {**SMS_MARKETING, "granted": False}
    assert local.client.post("/v1/profiles/u1/consents", json=revoke).status_code == 201
    assert local.client.post("/v1/profiles/u1/consents", json=revoke).status_code == 201
    assert [c["granted"] for c in ledger(local, "u1")] == [True, False]  # a change is kept, its repeat is not
    again = local.client.post("/v1/profiles", json=batch)
    assert again.status_code == 200
    assert [c["granted"] for c in ledger(local, "u1")] == [True, False, True]  # granted back: a change
    feed = local.client.get("/v1/consents", params={"limit": 1000}).json()["consents"]
    assert len(feed) == 5


def test_profiles_import_twice_from_a_file_keeps_one_consent_row(tmp_path: Path) -> None:
    path = tmp_path / "profiles.jsonl"
    path.write_text("".join(json.dumps({"user_id": f"p{n}", "consents": [SMS_MARKETING]}) + "\n" for n in range(5)))
    db = f"sqlite:///{tmp_path / 'journey.db'}"
    for _ in range(2):
        result = CliRunner().invoke(app, ["profiles", "import", str(path), "--db", db])
        assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["consent", "export", "--db", db])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 5


def test_a_malformed_email_is_refused_naming_the_field(local: LocalServer) -> None:
    reply = local.client.put("/v1/profiles/u1", json={"email": "not-an-email"})
    assert reply.status_code == 422
    assert reply.json()["detail"].startswith("email: 'not-an-email' is not an email address")
    assert local.client.get("/v1/profiles/u1").status_code == 404
    bulk = local.client.post("/v1/profiles", json={"profiles": [{"user_id": "u2", "email": "u2@example.com"},
                                                                {"user_id": "u3", "email": "u3 at example.com"}]})
    assert bulk.json()["upserted"] == 1 and bulk.json()["rejected"][0]["index"] == 1
    assert bulk.json()["rejected"][0]["error"].startswith("email:")


@pytest.mark.parametrize("email", ["a@b\u0085c.com", "a\u001c@b.com", "a@b\ufeff.com", "a@b\u2028.com"])
def test_an_email_with_a_control_or_blank_character_is_refused_as_the_document_says(
        local: LocalServer, email: str) -> None:
    """Python's and JavaScript's whitespace differ; the document's pattern and the parser agree."""
    schema = local.client.get("/openapi.json").json()["components"]["schemas"]["ProfileIn"]["properties"]["email"]
    [pattern] = [branch["pattern"] for branch in schema["anyOf"] if "pattern" in branch]
    assert re.search(pattern, email) is None
    reply = local.client.put("/v1/profiles/u1", json={"email": email})
    assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == "email", reply.text


def test_consent_for_a_user_with_no_profile_is_a_404(local: LocalServer) -> None:
    reply = local.client.post("/v1/profiles/nobody/consents", json=SMS_MARKETING)
    assert reply.status_code == 404 and "PUT /v1/profiles/nobody" in reply.json()["detail"]
    assert local.client.get("/v1/profiles/nobody").status_code == 404


def test_put_replaces_the_profile_and_patch_merges_into_it(local: LocalServer) -> None:
    put_profile(local, "ada", "sms:marketing", email="ada@example.com", attributes={"tier": "gold", "city": "Paris"})
    replaced = local.client.put("/v1/profiles/ada", json={"attributes": {"tier": "silver"}}).json()
    assert replaced["attributes"] == {"tier": "silver"} and replaced["email"] is None and replaced["phone"] is None
    assert len(replaced["consents"]) == 1  # the ledger is never rewritten

    put_profile(local, "bob", "sms:marketing", email="bob@example.com", attributes={"tier": "gold", "city": "Oslo"})
    merged = local.client.patch("/v1/profiles/bob", json={"attributes": {"tier": "platinum", "city": None, "vip": True},
                                                          "timezone": "Europe/Oslo", "push_token": None})
    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert body["attributes"] == {"tier": "platinum", "vip": True}
    assert (body["timezone"], body["push_token"], body["email"], body["phone"]) == \
        ("Europe/Oslo", None, "bob@example.com", "+14155550100")
    assert local.client.get("/v1/profiles/bob").json() == body

    revoke = {**SMS_MARKETING, "granted": False}
    assert [c["granted"] for c in local.client.patch("/v1/profiles/bob", json={"consents": [revoke]}).json()[
        "consents"]] == [True, False]

    assert local.client.patch("/v1/profiles/bob", json={"rcs_capable": True}).json()["rcs_capable"] is True
    cleared = local.client.patch("/v1/profiles/bob", json={"rcs_capable": None})  # null clears, as the document says
    assert cleared.status_code == 200 and cleared.json()["rcs_capable"] is False, cleared.text


def test_a_cached_capability_answer_survives_updates_that_agree_and_goes_with_one_that_does_not(
        local: LocalServer) -> None:
    """`rcs_capability` is a provider's answer the engine cached; an `rcs_capable` that contradicts it
    is the newer word, so the answer goes and the next RCS send asks again."""
    answer = {"capable": False, "checked_at": "2026-01-05T09:00:00Z", "source": "rbm"}
    put = local.client.put("/v1/profiles/cat", json={"phone": "+14155550100", "rcs_capability": answer})
    assert put.status_code == 200 and put.json()["rcs_capable"] is False and put.json()["rcs_capability"] == answer
    kept = local.client.put("/v1/profiles/cat", json={"phone": "+14155550100", "attributes": {"tier": "gold"}})
    assert kept.json()["rcs_capability"] == answer  # rcs_capable false (left out) agrees with it
    assert local.client.patch("/v1/profiles/cat", json={"timezone": "UTC"}).json()["rcs_capability"] == answer
    assert local.client.patch("/v1/profiles/cat", json={"rcs_capable": False}).json()["rcs_capability"] == answer
    contradicted = local.client.patch("/v1/profiles/cat", json={"rcs_capable": True}).json()
    assert contradicted["rcs_capable"] is True and contradicted["rcs_capability"] is None
    bad = local.client.put("/v1/profiles/cat", json={"rcs_capability": {**answer, "checked_at": "yesterday"}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "rcs_capability.checked_at"


def test_patch_refuses_what_it_cannot_merge(local: LocalServer) -> None:
    assert local.client.patch("/v1/profiles/nobody", json={"timezone": "UTC"}).status_code == 404
    put_profile(local, "u1")
    for body, field in (({"email": "nope"}, "email"), ({"timezone": "Mars/Base"}, "timezone"),
                        ({"colour": "red"}, "colour"), ({"attributes": [1]}, "attributes")):
        reply = local.client.patch("/v1/profiles/u1", json=body)
        assert reply.status_code == 422 and reply.json()["detail"].startswith(f"{field}:"), (body, reply.text)
    other = local.client.patch("/v1/profiles/u1", json={"user_id": "u2"})  # another user than the path's
    assert other.status_code == 409 and other.json()["detail"].startswith("user_id:"), other.text
    assert local.client.get("/v1/profiles/u1").json()["timezone"] == "UTC"


def test_a_profiles_locale_is_kept_by_put_patch_bulk_and_export(start_local: Any, any_db: str) -> None:
    """A locale is part of the profile on every store: written by PUT, PATCH and the bulk route, read back,
    cleared with null, exported; one CLDR does not know is a 422 naming it (its spelling suggested)."""
    local = start_local(db=any_db)
    assert local.client.put("/v1/profiles/ada", json={"locale": "fr-CA"}).json()["locale"] == "fr-CA"
    assert local.client.get("/v1/profiles/ada").json()["locale"] == "fr-CA"
    assert local.client.patch("/v1/profiles/ada", json={"email": "ada@example.com"}).json()["locale"] == "fr-CA"
    assert local.client.patch("/v1/profiles/ada", json={"locale": "es-419"}).json()["locale"] == "es-419"
    bulk = local.client.post("/v1/profiles", json={"profiles": [{"user_id": "bob", "locale": "de-DE"},
                                                                 {"user_id": "cy", "locale": "de_DE"}]}).json()
    assert bulk["upserted"] == 1 and bulk["rejected"][0]["index"] == 1
    assert "locale: unknown locale 'de_DE' (did you mean 'de-DE'?)" in bulk["rejected"][0]["error"]
    assert local.client.get("/v1/profiles/bob").json()["locale"] == "de-DE"
    export = local.client.get("/v1/profiles/ada/export")
    assert export.status_code == 200 and "es-419" in export.text, export.text
    wrong = local.client.put("/v1/profiles/ada", json={"locale": "fr-ca"})
    assert wrong.status_code == 422 and wrong.json()["detail"].startswith("locale: unknown locale 'fr-ca'"), wrong.text
    assert local.client.patch("/v1/profiles/ada", json={"locale": None}).json()["locale"] is None
