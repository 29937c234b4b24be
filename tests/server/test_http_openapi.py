"""The OpenAPI document: every body documented by the model its route parses it with, problem
details for every error, a readable operationId and a tag on every operation, and the bearer
scheme that gives `/docs` its Authorize button. (tests/chaos/test_schemathesis.py checks the
live server's answers against this document.)"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from engine.http.bodies import (
    BulkProfiles,
    ConsentIn,
    EventBatch,
    EventIn,
    ForecastRequest,
    PreferencesIn,
    PreviewRequest,
    ProfileIn,
    ProfilePatch,
    SimulatedProfile,
    SimulateRequest,
)
from engine.http.rbm_webhooks import RbmPush
from engine.http.webhooks import TwilioForm
from tests.server.conftest import LocalServer, StartLocal

PAGE = "/v1/users/{user_id}/preferences/page"  # an HTML page for people; its link carries their key
OPEN = {"/healthz", "/readyz", "/v1/webhooks/{provider}/{kind}", "/v1/webhooks/rbm", "/l/{code}", "/o/{code}", PAGE}


@pytest.fixture
def document(local: LocalServer) -> dict[str, Any]:
    with httpx.Client(base_url=local.base_url, timeout=10) as anonymous:  # served without a key
        response = anonymous.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in document["paths"].items() for method, op in ops.items()]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """The component names a body schema refers to (directly or through anyOf), each checked to exist."""
    refs = [schema["$ref"]] if "$ref" in schema else [s["$ref"] for s in schema.get("anyOf", [])]
    names = [ref.removeprefix("#/components/schemas/") for ref in refs]
    assert names and all(name in document["components"]["schemas"] for name in names), schema
    return names


def test_a_bearer_scheme_is_required_everywhere_but_on_the_open_paths(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer",
        "description": "One of the keys in `JOURNEY_API_KEYS`: `Authorization: Bearer <key>`."}
    assert document["security"] == [{"bearer": []}]
    for method, path, op in operations(document):
        if path in OPEN:
            assert op["security"] == [] and "401" not in op["responses"], (method, path)
        else:
            assert "security" not in op and "401" in op["responses"], (method, path)


def test_every_post_and_put_documents_its_body(document: dict[str, Any]) -> None:
    bodies = {(method, path): resolve(document, next(iter(op["requestBody"]["content"].values()))["schema"])
              for method, path, op in operations(document) if method in ("POST", "PUT") and "requestBody" in op}
    assert bodies == {
        ("POST", "/v1/events"): ["EventIn", "EventBatch"],
        ("PUT", "/v1/profiles/{user_id}"): ["ProfileIn"],
        ("POST", "/v1/profiles"): ["BulkProfiles"],
        ("POST", "/v1/profiles/{user_id}/consents"): ["ConsentIn"],
        ("POST", "/v1/journeys/{journey_id}/simulate"): ["SimulateRequest"],
        ("POST", "/v1/journeys/{journey_id}/forecast"): ["ForecastRequest"],
        ("POST", "/v1/journeys/{journey_id}/messages/{message}/preview"): ["PreviewRequest"],
        ("PUT", "/v1/users/{user_id}/preferences"): ["PreferencesIn"],
        ("POST", "/v1/journeys/{journey_id}/instances/cancel"): ["CancelRequest"],
        ("POST", "/v1/webhooks/{provider}/{kind}"): ["TwilioForm"],
        ("POST", "/v1/webhooks/rbm"): ["RbmPush"],
    }
    without = [(m, p) for m, p, op in operations(document) if m in ("POST", "PUT") and "requestBody" not in op]
    assert without == [("POST", "/v1/journeys/{journey_id}/runs"),  # a run takes no body: the journey says it all
                       ("POST", "/v1/journeys/reload"), ("POST", "/v1/journeys/{journey_id}/pause"),
                       ("POST", "/v1/journeys/{journey_id}/resume"), ("POST", "/v1/journeys/{journey_id}/stop"),
                       ("POST", "/v1/users/{user_id}/feed/{message_id}/{state}"),  # marks: the path says it all
                       ("POST", "/v1/users/{user_id}/feed/{state}"),
                       ("POST", PAGE)]  # a form of switches, one per category and channel
    examples = document["components"]["schemas"]["EventIn"]["examples"]
    assert examples[0]["type"] == "order.placed"


OPERATIONS = {("POST", "/v1/events"): "ingestEvents", ("GET", "/v1/profiles/{user_id}"): "getProfile",
              ("PUT", "/v1/profiles/{user_id}"): "putProfile", ("PATCH", "/v1/profiles/{user_id}"): "patchProfile",
              ("POST", "/v1/profiles"): "upsertProfiles", ("GET", "/v1/journeys"): "listJourneys",
              ("POST", "/v1/journeys/{journey_id}/simulate"): "simulateJourney", ("GET", "/healthz"): "checkLiveness",
              ("POST", "/v1/journeys/{journey_id}/forecast"): "forecastJourney",
              ("POST", "/v1/webhooks/rbm"): "receiveRbmEvent"}


def test_every_operation_has_a_readable_operation_id_and_a_tag(document: dict[str, Any]) -> None:
    """Generated clients name their methods and group them by these."""
    ids = {(method, path): op["operationId"] for method, path, op in operations(document)}
    assert {key: ids[key] for key in OPERATIONS} == OPERATIONS
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)+", name) for name in ids.values()), ids  # a verb, then nouns
    assert len(set(ids.values())) == len(ids)
    declared = [tag["name"] for tag in document["tags"]]
    for method, path, op in operations(document):
        assert op["tags"] and set(op["tags"]) <= set(declared), (method, path)
    assert sorted({tag for _, _, op in operations(document) for tag in op["tags"]}) == sorted(declared)


def without_nulls(value: Any) -> Any:
    """As FastAPI writes its document (`exclude_none`)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    return [without_nulls(v) for v in value] if isinstance(value, list) else value


BODIES = [EventIn, EventBatch, ProfileIn, ProfilePatch, ConsentIn, BulkProfiles, SimulateRequest, SimulatedProfile,
          ForecastRequest, PreviewRequest, PreferencesIn, TwilioForm, RbmPush]


@pytest.mark.parametrize("model", BODIES)
def test_a_body_is_documented_by_the_model_its_route_parses_it_with(document: dict[str, Any],
                                                                     model: type[BaseModel]) -> None:
    _, schemas = models_json_schema([(m, "validation") for m in BODIES], ref_template="#/components/schemas/{model}")
    expected = without_nulls(schemas["$defs"][model.__name__])
    assert without_nulls(document["components"]["schemas"][model.__name__]) == expected


def test_every_answer_has_a_model_and_every_error_is_problem_details(document: dict[str, Any]) -> None:
    for method, path, op in operations(document):
        success = [code for code in op["responses"] if code[0] in "23"]
        assert len(success) == 1, (method, path)
        if success == ["302"]:  # a tracked link: where to, and nothing else
            assert path == "/l/{code}" and set(op["responses"]["302"]["headers"]) == {"Location"}
        elif success != ["204"]:
            schema = next(iter(op["responses"][success[0]]["content"].values()))["schema"]
            assert path in ("/metrics", "/o/{code}", PAGE) or resolve(document, schema), (method, path)
        errors = {code: r for code, r in op["responses"].items() if code[0] in "45"}
        assert "503" in errors, (method, path)
        for code, response in errors.items():
            assert response["content"] == {"application/problem+json": {
                "schema": {"$ref": "#/components/schemas/Problem"}}}, (method, path, code)
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert {"type", "title", "status", "detail", "error"} <= set(schemas["Problem"]["required"]) | {"type"}


def test_the_tracked_links_are_their_own_tagged_operations(document: dict[str, Any]) -> None:
    """A generated client reads `followLink` and `openPixel` under `tracking`, apart from the API."""
    found = {(method, path): (op["operationId"], op["tags"]) for method, path, op in operations(document)
             if "tracking" in op.get("tags", ())}
    assert found == {("GET", "/l/{code}"): ("followLink", ["tracking"]),
                     ("GET", "/o/{code}"): ("openPixel", ["tracking"])}
    assert document["paths"]["/o/{code}"]["get"]["responses"]["200"]["content"] == {
        "image/gif": {"schema": {"type": "string", "format": "binary"}}}


def test_docs_are_served_without_a_key(local: LocalServer) -> None:
    with httpx.Client(base_url=local.base_url, timeout=10) as anonymous:
        docs = anonymous.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text


def test_metrics_are_open_in_the_document_when_public(start_local: StartLocal) -> None:
    local = start_local(metrics_public=True)
    document = local.client.get("/openapi.json").json()
    assert document["paths"]["/metrics"]["get"]["security"] == []


def test_what_an_answer_may_hold_is_documented_as_it_may_be(document: dict[str, Any]) -> None:
    """A journey's `name` is optional in its file (null in the answers); the consent feed's cursor
    is a position, empty for the start; every parameter says it holds no NUL character."""
    schemas = document["components"]["schemas"]
    assert {"type": "null"} in schemas["JourneySummary"]["properties"]["name"]["anyOf"]
    [cursor] = [p for p in document["paths"]["/v1/consents"]["get"]["parameters"] if p["name"] == "cursor"]
    pattern = re.compile(cursor["schema"]["pattern"])
    assert pattern.search("") and pattern.search("12:0") and not pattern.search("abc")  # the positions of each ledger
    [page] = [p for p in document["paths"]["/v1/messages"]["get"]["parameters"] if p["name"] == "cursor"]
    pattern = re.compile(page["schema"]["pattern"])
    assert pattern.search("1767225600000000~m1") and not pattern.search("1767225600000000~m\x001")  # no NUL
    for method, path, op in operations(document):
        for parameter in op.get("parameters", ()):
            branches = parameter["schema"].get("anyOf", [parameter["schema"]])
            assert all("pattern" in b for b in branches if b.get("type") == "string"), (method, path, parameter)
