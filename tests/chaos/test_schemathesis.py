"""A bounded schemathesis run against the live HTTP API (uvicorn over loopback, the real Server
on a memory store with the test journeys): whatever the schema lets a client send, the answer
is never a 5xx, its status is one the schema lists for the operation, its content type is the
one listed for that status, and its body matches the listed schema (problem details included).

Each operation's server holds user `u1` (a profile, consents, an order whose push and SMS went
out, a skipped send) so that the schema's examples (`u1`, `order-updates`) reach real data and
the success bodies are checked too, not only the 404s. About 950 requests over 20 operations
(examples, coverage and fuzzing phases; 15 generated examples each), some 15 seconds."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from channels import load_policy
from engine.host import Server
from engine.http import create_app
from engine.stores.memory import MemoryStore
from tests.server.conftest import LocalServer, post_events, put_profile

SCHEMA = schemathesis.openapi.from_dict(create_app(Server(MemoryStore(), [], load_policy())).openapi())
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@SCHEMA.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_no_5xx_and_matches_the_schema(case: schemathesis.Case, local: LocalServer) -> None:
    if not local.messages("u1"):  # once per operation: hypothesis runs every example on the same server
        seed(local)
    response = case.call(base_url=local.base_url, headers=local.headers, timeout=10)
    case.validate_response(response, checks=CHECKS, headers=local.headers)


def seed(local: LocalServer) -> None:
    put_profile(local, "u1", "sms:transactional", email="u1@example.com")
    put_profile(local, "u2", phone=None, push_token=None)  # no address at all: the SMS nudge is skipped
    for user in ("u1", "u2"):
        assert post_events(local, {"type": "order.placed", "user_id": user,
                                   "properties": {"order_id": f"o-{user}"}}).status_code == 202
        assert post_events(local, {"type": "delivery.completed", "user_id": user}).status_code == 202
    local.advance(3)
    assert [m["dispatch"] for m in local.messages("u1")] == ["sent", "sent", "sent"]
