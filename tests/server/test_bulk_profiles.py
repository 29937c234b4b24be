"""Profiles in bulk: `POST /v1/profiles` upserts up to 10,000 at once as PUT does one and lists
the refused with their index; `journey profiles import` does the same from a JSON Lines file,
into a database or through a running server, and names the lines it refused."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from engine.cli import app
from engine.stores.sql import SqlStore
from tests.server.conftest import LocalServer, put_profile

GRANT = {"channel": "sms", "category": "marketing", "granted": True, "source": "import", "at": "2026-01-01T00:00:00Z"}


def test_a_batch_upserts_the_valid_profiles_and_lists_the_rest_by_index(local: LocalServer) -> None:
    put_profile(local, "u0", "sms:transactional", attributes={"tier": "gold"})
    batch = [{"user_id": f"u{n}", "phone": "+14155550100", "consents": [GRANT]} for n in range(5)]
    batch.insert(2, {"user_id": "bad", "phone": 12})
    batch.insert(4, {"phone": "+14155550100"})
    reply = local.client.post("/v1/profiles", json={"profiles": batch})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["upserted"] == 5
    assert [(r["index"], r["error"].split(":")[0]) for r in body["rejected"]] == [(2, "phone"), (4, "user_id")]
    u0 = local.client.get("/v1/profiles/u0").json()
    assert u0["attributes"] == {}  # fields replaced, as PUT does
    assert [(c["channel"], c["category"]) for c in u0["consents"]] == [("sms", "transactional"), ("sms", "marketing")]
    assert local.client.get("/v1/profiles/u4").json()["consents"][0]["source"] == "import"


def test_a_batch_over_the_limit_or_of_the_wrong_shape_is_a_422(local: LocalServer) -> None:
    over = local.client.post("/v1/profiles", json={"profiles": [{"user_id": "x"}] * 10_001})
    assert over.status_code in (413, 422) and "profiles" in over.json()["detail"]
    assert local.client.post("/v1/profiles", json=[{"user_id": "x"}]).status_code == 422


def _file(tmp_path: Path) -> Path:
    lines = [json.dumps({"user_id": f"p{n}", "email": f"p{n}@example.com", "consents": [GRANT]}) for n in range(2500)]
    lines.insert(7, "{not json")
    lines.insert(1000, json.dumps({"user_id": "p-bad", "timezone": "Mars/Olympus"}))
    path = tmp_path / "profiles.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_profiles_import_into_a_database_names_the_refused_lines(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'journey.db'}"
    result = CliRunner().invoke(app, ["profiles", "import", str(_file(tmp_path)), "--db", db])
    assert result.exit_code == 1
    assert "2500 profiles upserted, 2 refused" in result.stdout
    assert f"{tmp_path / 'profiles.jsonl'}:8: not JSON" in result.stderr
    assert f"{tmp_path / 'profiles.jsonl'}:1001: timezone" in result.stderr
    store = SqlStore(db)
    with store.transaction() as tx:
        profile = tx.get_profile("p2499")
    store.close()
    assert profile is not None and profile.email == "p2499@example.com" and len(profile.consents) == 1


def test_profiles_import_through_a_running_server(local: LocalServer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["profiles", "import", str(_file(tmp_path)), "--url", local.base_url,
                                      "--key", local.headers["Authorization"].removeprefix("Bearer ")])
    assert result.exit_code == 1 and "2500 profiles upserted, 2 refused" in result.stdout
    assert local.client.get("/v1/profiles/p1234").json()["email"] == "p1234@example.com"


def test_profiles_import_brings_engagement_history_from_another_tool(tmp_path: Path) -> None:
    """A team arriving with history: the counts go in with the profile, and a second import of the
    same people without them (a CRM export) leaves them as they are."""
    db = f"sqlite:///{tmp_path / 'journey.db'}"
    path = tmp_path / "history.jsonl"
    path.write_text(json.dumps({"user_id": "h1", "engagement": {"sms": {"sent": 10, "engaged": 9,
                                                                        "by_hour": {"19": 9}}}}) + "\n"
                    + json.dumps({"user_id": "h2", "engagement": {"sms": {"sent": "ten"}}}) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["profiles", "import", str(path), "--db", db])
    assert result.exit_code == 1 and "1 profiles upserted, 1 refused" in result.stdout
    assert f"{path}:2: engagement.sms.sent" in result.stderr
    path.write_text(json.dumps({"user_id": "h1", "email": "h1@example.com"}) + "\n", encoding="utf-8")
    assert CliRunner().invoke(app, ["profiles", "import", str(path), "--db", db]).exit_code == 0
    store = SqlStore(db)
    with store.transaction() as tx:
        profile = tx.get_profile("h1")
    store.close()
    assert profile is not None and profile.email == "h1@example.com"
    assert profile.to_dict()["engagement"]["sms"]["engaged"] == 9
    assert profile.to_dict()["engagement"]["sms"]["by_hour"] == {"19": 9}
