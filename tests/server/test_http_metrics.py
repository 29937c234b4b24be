"""/metrics: messages by channel and status, skips and cancels by reason, cost by channel, the
processing and lateness histograms, the outbox's backlog, prometheus_client's default collectors, and
`JOURNEY_METRICS_PUBLIC=1` for scrapers without a key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from engine.errors import TemporaryStoreError
from tests.server.conftest import LocalServer, StartLocal, metric, post_events, put_profile


def order(user_id: str) -> dict[str, object]:
    return {"type": "order.placed", "user_id": user_id, "properties": {"order_id": f"o-{user_id}"}}


def test_messages_by_channel_and_status_cost_and_skips(local: LocalServer) -> None:
    put_profile(local, "u1", "sms:transactional")  # push, then the SMS after the 2 s wait
    put_profile(local, "u2", phone=None)  # push only: the SMS step is skipped
    put_profile(local, "u3")  # push, but the push is revoked before the outbox runs
    for user in ("u1", "u2", "u3"):
        assert post_events(local, order(user)).status_code == 202
    revoke = {"channel": "push", "category": "transactional", "granted": False}
    assert local.client.post("/v1/profiles/u3/consents", json=revoke).status_code == 201
    local.advance(3)
    assert metric(local, "journey_messages_total", channel="push", status="queued") == 3
    assert metric(local, "journey_messages_total", channel="push", status="sent") == 2
    assert metric(local, "journey_messages_total", channel="push", status="cancelled") == 1
    assert metric(local, "journey_messages_total", channel="sms", status="queued") == 1
    assert metric(local, "journey_messages_total", channel="sms", status="sent") == 1
    assert metric(local, "journey_messages_cancelled_total", reason="opted_out") == 1
    assert metric(local, "journey_skips_total", reason="no_eligible_channel") == 2  # u2 and u3: no SMS consent
    assert metric(local, "journey_skips_total", reason="template_error") == 0
    sms_cost = local.messages("u1")[0]["cost"]
    assert sms_cost > 0 and metric(local, "journey_cost_total", channel="sms") == pytest.approx(sms_cost)
    assert metric(local, "journey_cost_total", channel="push") == pytest.approx(
        3 * local.messages("u2")[0]["cost"])


def test_event_processing_and_timer_lateness_histograms(local: LocalServer) -> None:
    assert post_events(local, {"events": [order("u1"), order("u2")]}).status_code == 202
    assert post_events(local, order("u3")).status_code == 202
    assert metric(local, "journey_event_processing_seconds_count") == 2  # one per batch
    assert (metric(local, "journey_event_processing_seconds_sum") or 0) > 0
    local.clock.advance_to(local.clock.now() + timedelta(seconds=7))  # the 2 s waits fire 5 s late
    local.settle()
    assert metric(local, "journey_timer_lateness_seconds_count") == 3
    assert metric(local, "journey_timer_lateness_seconds_sum") == pytest.approx(15.0)
    assert metric(local, "journey_timer_lateness_seconds_bucket", le="2.5") == 0
    assert metric(local, "journey_timer_lateness_seconds_bucket", le="5.0") == 3
    assert metric(local, "journey_timer_lateness_seconds_bucket", le="+Inf") == 3


def test_the_default_collectors_are_there(local: LocalServer) -> None:
    assert (metric(local, "process_resident_memory_bytes") or 0) > 0
    assert metric(local, "python_info") == 1
    assert metric(local, "python_gc_collections_total", generation="0") is not None


@pytest.mark.parametrize("public", [False, True])
def test_metrics_need_the_key_unless_public(start_local: StartLocal, public: bool) -> None:
    local = start_local(metrics_public=public)
    with httpx.Client(base_url=local.base_url, timeout=10) as anonymous:
        assert anonymous.get("/metrics").status_code == (200 if public else 401)
        assert anonymous.get("/v1/journeys").status_code == 401  # only /metrics opens


def test_the_outbox_backlog_by_channel_and_metrics_without_it_while_the_database_is_down(
        local: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    put_profile(local, "u1", "sms:transactional")
    assert post_events(local, order("u1")).status_code == 202  # a push queued, not yet sent
    assert metric(local, "journey_outbox_queued", channel="push") == 1
    assert metric(local, "journey_outbox_queued", channel="email") == 0  # every channel, 0 when none waits

    def down() -> dict[str, int]:
        raise TemporaryStoreError("the database is unavailable")

    monkeypatch.setattr(local.server.store.outbox, "outbox_queued", down)
    assert metric(local, "journey_outbox_queued", channel="push") is None  # left out; the rest still answers
    assert metric(local, "journey_messages_total", channel="push", status="queued") == 1


def test_what_the_engine_costs_cpu_statements_and_rows_written(start_local: StartLocal, tmp_path: Path) -> None:
    """The figures a busy machine hardly moves, counted as they happen: the engine's thread CPU,
    the SQL statements run and the rows they wrote. A memory store runs no SQL: no such figures."""
    local = start_local(f"sqlite:///{tmp_path / 'journey.db'}")
    before = [metric(local, name) or 0 for name in COSTS]
    put_profile(local, "u1", "sms:transactional")
    assert post_events(local, {"events": [order("u1"), order("u2")]}).status_code == 202
    local.advance(3)
    cpu, statements, rows = (metric(local, name) or 0 for name in COSTS)
    assert cpu > before[0] and statements > before[1] + 3 and rows > before[2] + 3
    memory = start_local()
    assert metric(memory, "journey_engine_cpu_seconds_total") is not None
    assert metric(memory, "journey_sql_statements_total") is None


COSTS = ("journey_engine_cpu_seconds_total", "journey_sql_statements_total", "journey_sql_rows_written_total")
