"""A bounded schemathesis run against the live HTTP API (uvicorn over loopback, the real Server
on a memory store with the test journeys), with every check schemathesis has on: the answer is
never a 5xx; its status, content type, headers and body are the ones the document lists for the
operation (problem details included); a request the document says is invalid is refused and one
it says is valid is taken (a batch's bad items are `rejected`, not refused); a method not
allowed is a 405 with the `Allow` the document implies; a route that needs the key refuses a
request without it; and the stateful checks (use after free, resource availability).

Each operation's server holds user `u1` (a profile, consents, an order whose push and SMS went
out, a skipped send, an instance of a journey without a name that was removed since) and a STOP
from a number no profile holds (a consent trail row without a user) so that
the schema's examples (`u1`, `order-updates`) reach real data and the success bodies are checked
too, not only the 404s. Phone numbers are generated valid (the
document's `format: e164`: the number plan decides which numbers exist, which no pattern says).
About 3,000 requests over 24 operations (examples, coverage and fuzzing phases; 15 generated
examples each), about a minute."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig

from channels import load_policy
from engine.host import Server
from engine.http import create_app
from engine.stores.memory import MemoryStore
from tests.server.conftest import API_KEYS, LocalServer, post_events, put_profile

AUTH = SchemathesisConfig.from_dict({"auth": {"openapi": {"bearer": {"bearer": API_KEYS[0]}}}})
SCHEMA = schemathesis.openapi.from_dict(create_app(Server(MemoryStore(), [], load_policy())).openapi(), config=AUTH)
VALID_PHONES = ["+14155550100", "+12125550123", "+33612345678", "+4930123456", "+442071838750", "+61412345678"]
schemathesis.openapi.format("e164", st.sampled_from(VALID_PHONES))
load_all_checks()
EVERY_CHECK = list(CHECKS.get_all())


@SCHEMA.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_passes_every_check(case: schemathesis.Case, local: LocalServer) -> None:
    if not local.messages("u1"):  # once per operation: hypothesis runs every example on the same server
        seed(local)
    response = case.call(base_url=local.base_url, timeout=10)  # the key as the document's scheme says, when it does
    case.validate_response(response, checks=EVERY_CHECK)


def seed(local: LocalServer) -> None:
    put_profile(local, "u1", "sms:transactional", email="u1@example.com")
    put_profile(local, "u2", phone=None, push_token=None)  # no address at all: the SMS nudge is skipped
    for user in ("u1", "u2"):
        assert post_events(local, {"type": "order.placed", "user_id": user,
                                   "properties": {"order_id": f"o-{user}"}}).status_code == 202
        assert post_events(local, {"type": "delivery.completed", "user_id": user}).status_code == 202
    local.advance(3)
    assert [m["dispatch"] for m in local.messages("u1")] == ["sent", "sent", "sent"]
    with local.server.lock, local.server.store.transaction() as tx:  # the consent trail's other rows: a number's
        tx.record_suppression("+14155550199", "STOP", local.clock.now(), "sms.inbound:nobody")  # (user_id null)
    # a journey without a name, removed while u1 is in it: listed by GET /v1/journeys (state removed, name null)
    folder = local.server.deploys.folder
    assert folder is not None
    (folder / "nameless.yaml").write_text(NAMELESS, encoding="utf-8")
    assert local.client.post("/v1/journeys/reload").status_code == 200
    assert post_events(local, {"type": "nameless.entered", "user_id": "u1"}).status_code == 202
    (folder / "nameless.yaml").unlink()
    assert local.client.post("/v1/journeys/reload").json()["removed"] == ["nameless"]


NAMELESS = """\
id: nameless
trigger: {event: nameless.entered}
steps:
  - {id: later, type: wait, duration: 30d}
"""
