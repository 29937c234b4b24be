"""A bounded schemathesis run against the live HTTP API (uvicorn over loopback, the real Server
on a memory store): whatever the schema lets a client send, the answer is never a 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings

from channels import load_policy
from engine.host import Server
from engine.http import create_app
from engine.stores.memory import MemoryStore
from tests.server.conftest import LocalServer

SCHEMA = schemathesis.openapi.from_dict(create_app(Server(MemoryStore(), [], load_policy())).openapi())


@SCHEMA.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_the_schema_allows_gets_a_5xx(case: schemathesis.Case, local: LocalServer) -> None:
    response = case.call(base_url=local.base_url, headers=local.headers, timeout=10)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
