"""kill -9 while a digest's window is open, then a restart on the same SQLite file: the digest
goes on collecting where it was (its events are in the instance, saved with each event) and,
when the window closes, exactly one SMS goes out listing every event, those from before the
kill and those after the restart."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.engine.test_steps_digest import UPDATES
from tests.server.conftest import ServerProcess, StartServer, put_profile, wait_for_sweeps, wait_until

WINDOW = 40  # seconds: the kill and the restart happen inside it, with room for a busy machine
DIGEST = UPDATES.replace("window: 30m", f"window: {WINDOW}s")  # the journey simulate runs


def post(server: ServerProcess, status: str) -> None:
    reply = server.client.post("/v1/events", json={"type": "order.updated", "user_id": "u1",
                                                   "properties": {"status": status}})
    assert reply.status_code == 202, reply.text


def collected(server: ServerProcess) -> int:
    found: list[dict[str, Any]] = server.client.get("/v1/users/u1/instances").json()["instances"]
    digests = [i["digest"]["count"] for i in found if i.get("digest") and i["status"] == "active"]
    return digests[0] if digests else 0


def sms(server: ServerProcess) -> list[str]:
    return [line["content"]["text"] for line in server.outbox_lines() if line["channel"] == "sms"]


def test_a_digest_open_across_kill_9_and_a_restart_sends_one_message_with_every_event(
        tmp_path: Path, journeys_dir: Path, start_server: StartServer) -> None:
    (journeys_dir / "updates.yaml").write_text(DIGEST, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'journey.db'}"
    first = start_server(db=url, name="before-kill")
    put_profile(first, "u1", "sms:transactional")
    opened = time.monotonic()
    for status in ("placed", "paid", "packed"):
        post(first, status)
    wait_until(lambda: collected(first) == 3, timeout=20, what="the digest to hold the first three events")
    first.kill()

    second = start_server(db=url, name="after-kill")
    assert collected(second) == 3
    for status in ("shipped", "delivered"):
        post(second, status)
    wait_until(lambda: collected(second) == 5, timeout=20, what="the digest to take the events after the restart")
    assert time.monotonic() - opened < WINDOW, "the restart took longer than the window: the test proves nothing"
    assert sms(second) == []

    texts = wait_until(lambda: sms(second), timeout=WINDOW + 30, what="the digest's SMS")
    assert texts == ["5 updates: placed paid packed shipped delivered "]
    wait_for_sweeps("timers", "outbox", on=[second], timeout=30)
    assert sms(second) == texts
    (ended,) = second.client.get("/v1/users/u1/instances").json()["instances"]
    assert (ended["status"], ended["path"]) == ("completed", ["gather", "tell"])
