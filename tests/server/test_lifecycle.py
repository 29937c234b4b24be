"""A journey's lifecycle as an operator sees it: a stop is final until a new version is deployed,
a comment is not a new version, an instance ended by `exit_on` says which event ended it, and
every reload, refused or done, is one log line with its facts as fields."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.server.conftest import JOURNEYS, LocalServer, StartLocal, StartServer, post_events, put_profile, wait_until
from tests.server.test_deploys import edit_welcome

EXIT_ON = """\
id: checkout-nudge
name: Checkout nudge
category: transactional
trigger:
  event: checkout.started
exit_on: [checkout.cancelled]
steps:
  - {id: later, type: wait, duration: 1h}
  - {id: nudge, type: send, message: nudge, channels: [push]}
messages:
  nudge:
    push: {title: "Still there?", body: "Your checkout is waiting"}
"""


def test_a_stopped_journey_is_not_resumed_but_a_new_version_starts_it_again(local: LocalServer,
                                                                             journeys_dir: Path) -> None:
    put_profile(local, "A", "sms:transactional")
    assert local.client.post("/v1/journeys/welcome/stop").json()["state"] == "stopped"
    for action in ("resume", "pause"):
        refused = local.client.post(f"/v1/journeys/welcome/{action}")
        assert refused.status_code == 409, refused.text
        assert "stop is final" in refused.json()["detail"] and "new version" in refused.json()["detail"]
    assert local.client.post("/v1/journeys/welcome/stop").status_code == 200  # stopping again: the same answer
    assert local.client.get("/v1/journeys/welcome").json()["state"] == "stopped"
    post_events(local, {"type": "account.created", "user_id": "A"})
    assert local.client.get("/v1/users/A/instances").json()["instances"] == []

    assert local.client.post("/v1/journeys/reload").json()["unchanged"] == ["order-updates", "review-request",
                                                                            "welcome"]
    assert local.client.get("/v1/journeys/welcome").json()["state"] == "stopped"  # the same version: still stopped
    edit_welcome(journeys_dir)
    assert local.client.post("/v1/journeys/reload").json()["changed"] == ["welcome"]
    assert local.client.get("/v1/journeys/welcome").json()["state"] == "active"
    post_events(local, {"type": "account.created", "user_id": "A"})
    [instance] = local.client.get("/v1/users/A/instances").json()["instances"]
    assert instance["status"] == "active"


def test_a_stopped_journey_restarted_with_a_new_version_is_active(start_local: StartLocal, journeys_dir: Path,
                                                                  tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'journey.db'}"
    local = start_local(db=db)
    local.client.post("/v1/journeys/welcome/stop")
    local.stop()
    local = start_local(db=db, clock=local.clock)
    assert local.client.get("/v1/journeys/welcome").json()["state"] == "stopped"
    local.stop()
    edit_welcome(journeys_dir)
    local = start_local(db=db, clock=local.clock)
    assert local.client.get("/v1/journeys/welcome").json()["state"] == "active"


def test_a_comment_or_layout_edit_is_not_a_new_version(local: LocalServer, journeys_dir: Path) -> None:
    before = local.client.get("/v1/journeys/welcome").json()
    text = "# Welcome series: owned by the growth team\n" + JOURNEYS["welcome.yaml"].replace(
        "name: Welcome", "name: 'Welcome'   # shown in the console").replace("trigger:\n  event: account.created",
                                                                       "trigger: {event: account.created}")
    (journeys_dir / "welcome.yaml").write_text(text, encoding="utf-8")
    reply = local.client.post("/v1/journeys/reload").json()
    assert reply["changed"] == [] and "welcome" in reply["unchanged"]
    after = local.client.get("/v1/journeys/welcome").json()
    assert after["version"] == before["version"] and len(after["versions"]) == 1
    edit_welcome(journeys_dir)  # a change of what it sends is one
    assert local.client.post("/v1/journeys/reload").json()["changed"] == ["welcome"]


@pytest.mark.parametrize("db", ["memory", "sqlite"])
def test_an_instance_ended_by_exit_on_names_the_event(start_local: StartLocal, journeys_dir: Path, tmp_path: Path,
                                                       db: str) -> None:
    (journeys_dir / "checkout-nudge.yaml").write_text(EXIT_ON, encoding="utf-8")
    local = start_local(db=f"sqlite:///{tmp_path / 'journey.db'}" if db == "sqlite" else None)
    put_profile(local, "A")
    post_events(local, {"type": "checkout.started", "user_id": "A"})
    post_events(local, {"type": "checkout.cancelled", "user_id": "A"})
    [instance] = local.client.get("/v1/users/A/instances").json()["instances"]
    assert (instance["status"], instance["reason"]) == ("exited", "exit_on checkout.cancelled")


def _records(log: Path, logger: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == logger]


def test_each_reload_is_logged_once_refused_or_done(start_server: StartServer, journeys_dir: Path) -> None:
    server = start_server(args=["--log-format", "json"])
    (journeys_dir / "broken.yaml").write_text("id: broken\nsteps: []\n", encoding="utf-8")
    assert server.client.post("/v1/journeys/reload").status_code == 422
    [refused] = wait_until(lambda: _records(server.log, "journey.deploys"), timeout=30, what="the refused reload")
    assert refused["level"] == "error" and refused["msg"] == "reload refused, nothing changed"
    assert refused["problems"] and str(journeys_dir / "broken.yaml") in str(refused["first"])

    (journeys_dir / "broken.yaml").unlink()
    edit_welcome(journeys_dir)
    server.process.send_signal(signal.SIGHUP)
    wait_until(lambda: len(_records(server.log, "journey.deploys")) >= 2, timeout=30, what="the SIGHUP reload")
    assert server.client.post("/v1/journeys/reload").status_code == 200
    records = wait_until(lambda: (r := _records(server.log, "journey.deploys")) and len(r) >= 3 and r, timeout=30,
                         what="the HTTP reload")
    reloads = records[1:]
    assert [r["msg"] for r in reloads] == ["reloaded journeys", "reloaded journeys"], records
    assert reloads[0]["changed"] == "welcome" and reloads[1]["unchanged"] == "order-updates review-request welcome"
    assert all("{" not in str(r["msg"]) for r in records)
    assert server.process.poll() is None
