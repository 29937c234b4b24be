"""The OpenAPI document: bodies, answers, errors and the bearer scheme, described by hand.

Routes keep reading bodies themselves (see `engine.http.schemas` for why), so FastAPI cannot
infer their shapes: each route says what it takes and answers with `documented(...)`, and
`install_openapi` finishes the document once, on first request:

- every model of `engine.http.schemas` goes into `components.schemas`;
- every operation lists the problems it may answer, all `application/problem+json`: its own
  (a 404 for an unknown id...), 400/413/422 when it takes a body, 422 when it takes
  parameters, 401 when it needs the key, and 503 (the database is unreachable);
- an HTTP bearer scheme (`JOURNEY_API_KEYS`) is required everywhere but on the open paths, so
  `/docs` has an Authorize button;
- every string parameter says it holds no NUL character (the API refuses one in any URL).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from engine.http.problems import PROBLEM_JSON
from engine.http.schemas import MODELS

REF = "#/components/schemas/{model}"
ERRORS = {400: "The body is not JSON", 401: "Missing or wrong API key", 404: "Not found", 409: "Conflict",
          413: "The body is over the size limit", 422: "A field is invalid (`errors` names it)",
          503: "The database is unreachable: try again after `Retry-After` seconds"}
SECURITY = "bearer"


def ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def documented(answer: type[BaseModel] | dict[str, Any] | None = None, *errors: int, status: int = 200,
               body: type[BaseModel] | tuple[type[BaseModel], ...] | None = None, media: str = "application/json",
               body_media: str = "application/json", description: str = "Success") -> dict[str, Any]:
    """Keyword arguments for a route decorator: the answer's model (or schema) for `status`, the
    route's own error statuses, and the request body's model (several: any of them)."""
    responses: dict[int | str, dict[str, Any]] = {status: {"description": description}}
    if answer is not None:
        schema = answer if isinstance(answer, dict) else ref(answer)
        responses[status]["content"] = {media: {"schema": schema}}
    responses.update({code: {"description": ERRORS.get(code, "Error")} for code in errors})
    kwargs: dict[str, Any] = {"status_code": status, "response_model": None, "responses": responses}
    if body is not None:
        models = body if isinstance(body, tuple) else (body,)
        schema = ref(models[0]) if len(models) == 1 else {"anyOf": [ref(m) for m in models]}
        kwargs["openapi_extra"] = {"requestBody": {"required": True, "content": {body_media: {"schema": schema}}}}
    return kwargs


def install_openapi(app: FastAPI, is_open: Callable[[str], bool]) -> None:
    """Replace `app.openapi` with one that finishes FastAPI's document as the module says."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description,
                                   routes=app.routes)
            app.openapi_schema = finish(document, is_open)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def finish(document: dict[str, Any], is_open: Callable[[str], bool]) -> dict[str, Any]:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 shape: never answered here
        schemas.pop(name, None)
    _, definitions = models_json_schema([(model, "validation") for model in MODELS], ref_template=REF)
    schemas.update(definitions.get("$defs", {}))
    components["securitySchemes"] = {SECURITY: {
        "type": "http", "scheme": "bearer",
        "description": "One of the keys in `JOURNEY_API_KEYS`: `Authorization: Bearer <key>`."}}
    document["security"] = [{SECURITY: []}]
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            _errors(operation, secured=not is_open(path))
            _no_nul(operation)
            if is_open(path):
                operation["security"] = []
    return document


def _errors(operation: dict[str, Any], secured: bool) -> None:
    """The problems an operation may answer: its own, and those every operation of its kind may."""
    responses = operation.setdefault("responses", {})
    codes = {503} | ({401} if secured else set())
    if operation.get("parameters"):
        codes.add(422)
        if any(p.get("in") == "path" for p in operation["parameters"]):
            codes.add(404)  # an id that names nothing, or a path the router cannot take apart
    if "requestBody" in operation:
        codes |= {400, 413, 422}
    for code in codes:
        responses.setdefault(str(code), {"description": ERRORS[code]})
        if responses[str(code)].get("description") == "Validation Error":  # FastAPI's own words
            responses[str(code)]["description"] = ERRORS[code]
    operation["responses"] = responses = dict(sorted(responses.items()))
    for code, response in responses.items():
        if code[0] in "45":
            response["content"] = {PROBLEM_JSON: {"schema": {"$ref": REF.format(model="Problem")}}}
            if code == "401":
                response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
            elif code == "503":
                response["headers"] = {"Retry-After": {"description": "seconds", "schema": {"type": "string"}}}


NO_NUL = "^[^\\x00]*$"
"""No path or query value may hold a NUL character (the API answers 422): said in every string
parameter that has no pattern of its own."""


def _no_nul(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", ()):
        schema = parameter.get("schema", {})
        for branch in schema.get("anyOf", [schema]):
            if branch.get("type") == "string" and "pattern" not in branch:
                branch["pattern"] = NO_NUL
