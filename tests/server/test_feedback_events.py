"""Provider feedback (`<channel>.<status>`) changes a message only when the status is one: an
ordinary event whose name happens to start with a channel (`sms.go`) leaves messages alone, and
`journey validate` says so when a journey listens for such a name."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from engine.cli import app
from tests.server.conftest import LocalServer, StartLocal, post_events, put_profile

GO = """\
id: go-game
category: transactional
trigger: {event: sms.go}
steps:
  - {id: cheer, type: send, message: cheer, channels: [push]}
messages:
  cheer:
    push: {title: "Go", body: "Off you go"}
"""
LISTENS = """\
id: listens
category: transactional
trigger: {event: sms.go}
steps:
  - {id: tapped, type: wait_for, event: push.tapped, timeout: 1h, on_event: opened, on_timeout: opened}
  - {id: opened, type: wait_for, event: push.opened, timeout: 1h, on_event: done, on_timeout: done}
  - {id: done, type: exit}
messages: {}
"""


def test_an_event_named_like_feedback_but_not_feedback_leaves_the_message_status_alone(
        start_local: StartLocal, journeys_dir: Path) -> None:
    """The user's SMS is delivered; `sms.go` (a trigger, not a delivery status) starts its journey
    and the SMS stays `delivered`. A real status (`sms.read`) still lands on it."""
    (journeys_dir / "go-game.yaml").write_text(GO, encoding="utf-8")
    local = start_local()
    put_profile(local, "ann", "sms:transactional")
    post_events(local, {"type": "order.placed", "user_id": "ann", "properties": {"order_id": "A1"}})
    local.advance(3)  # the 2 s wait, then the SMS
    sms = [m for m in local.messages("ann") if m["channel"] == "sms"]
    assert [m["message"] for m in sms] == ["order_shipped"]
    post_events(local, {"type": "sms.delivered", "user_id": "ann"})
    assert _status(local, "ann", "sms") == "delivered"

    post_events(local, {"type": "sms.go", "user_id": "ann"})
    assert _status(local, "ann", "sms") == "delivered"
    instances = local.client.get("/v1/users/ann/instances").json()["instances"]
    assert any(i["journey_id"] == "go-game" for i in instances)
    post_events(local, {"type": "sms.read", "user_id": "ann"})
    assert _status(local, "ann", "sms") == "read"


def test_validate_warns_about_a_feedback_looking_event_that_is_not_feedback(tmp_path: Path) -> None:
    (tmp_path / "listens.yaml").write_text(LISTENS, encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "listens.yaml")])
    assert result.exit_code == 0, result.output
    path = tmp_path / "listens.yaml"
    assert f"{path}:3: warning: trigger event 'sms.go' looks like provider feedback" in result.output
    assert f"{path}:5: warning: step 'tapped': event 'push.tapped' looks like provider feedback" in result.output
    assert "push.opened" not in result.output  # a real feedback event: nothing to say


def _status(local: LocalServer, user: str, channel: str) -> str:
    [latest] = [m for m in local.messages(user) if m["channel"] == channel][:1]
    return str(latest["status"])


REPLIES = """\
id: replies
category: transactional
trigger: {event: asked}
steps:
  - {id: answer, type: wait_for, event: [rcs.reply, sms.inbound], timeout: 1h, on_event: read, on_timeout: read}
  - {id: read, type: wait_for, event: rcs.read, timeout: 1h, on_event: typo, on_timeout: typo}
  - {id: typo, type: wait_for, event: rcs.replied, timeout: 1h}
messages: {}
"""


def test_validate_knows_rcs_reply_and_rcs_read_and_warns_about_a_near_miss(tmp_path: Path) -> None:
    (tmp_path / "replies.yaml").write_text(REPLIES, encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "replies.yaml")])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if "warning" in line]
    assert warnings == [f"{tmp_path / 'replies.yaml'}:7: warning: step 'typo': event 'rcs.replied' looks like "
                        "provider feedback (<channel>.<status>) but 'replied' is not a status (archived, bounced, "
                        "clicked, delivered, failed, opened, queued, read, seen, sending, sent): it never changes a "
                        "message; did you mean 'reply'?"]
