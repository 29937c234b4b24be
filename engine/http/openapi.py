"""The OpenAPI document: FastAPI's, made from the routes (their body models, answer models,
`operationId`s and tags), finished once, on first request:

- the models that routes parse their raw bodies with (`parsed_body`: a batch that rejects its bad
  items one by one) and the problem details' model join `components.schemas`;
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

from engine.http.bodies import REF
from engine.http.problems import PROBLEM_JSON
from engine.http.schemas import Problem

JSON = "application/json"
ERRORS = {400: "The body is not JSON", 401: "Missing or wrong API key", 404: "Not found", 409: "Conflict",
          413: "The body is over the size limit", 422: "A field is invalid (`errors` names it)",
          503: "The database is unreachable: try again after `Retry-After` seconds"}
SECURITY = "bearer"
_PARSED: dict[str, type[BaseModel]] = {}
"""The models of `parsed_body`: FastAPI does not see them, so `finish` adds them to the components."""


def documented(answer: Any = None, *errors: int, status: int = 200, media: str = JSON,
               description: str = "Success") -> dict[str, Any]:
    """Keyword arguments for a route decorator: the answer's model (a pydantic model, a union of them,
    or a JSON Schema for `media`) for `status`, and the route's own error statuses. Handlers answer
    dicts: the model documents the answer, which the schemathesis run checks."""
    success: dict[str, Any] = {"description": description}
    if isinstance(answer, dict):
        success["content"] = {media: {"schema": answer}}
    elif answer is not None:
        success["model"] = answer
    responses: dict[int | str, dict[str, Any]] = {status: success}
    responses.update({code: {"description": ERRORS.get(code, "Error")} for code in errors})
    return {"status_code": status, "response_model": None, "responses": responses}


def parsed_body(*models: type[BaseModel], media: str = JSON) -> dict[str, Any]:
    """`openapi_extra` for a route that parses its body itself with `models` (any of them)."""
    _PARSED.update((model.__name__, model) for model in models)
    refs = [{"$ref": REF.format(model=model.__name__)} for model in models]
    schema = refs[0] if len(refs) == 1 else {"anyOf": refs}
    return {"requestBody": {"required": True, "content": {media: {"schema": schema}}}}


def install_openapi(app: FastAPI, is_open: Callable[[str], bool]) -> None:
    """Replace `app.openapi` with one that finishes FastAPI's document as the module says."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description,
                                   routes=app.routes, tags=app.openapi_tags, separate_input_output_schemas=False)
            app.openapi_schema = finish(document, is_open)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def finish(document: dict[str, Any], is_open: Callable[[str], bool]) -> dict[str, Any]:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 shape: never answered here
        schemas.pop(name, None)
    models: list[type[BaseModel]] = [Problem, *_PARSED.values()]
    _, definitions = models_json_schema([(model, "validation") for model in models], ref_template=REF)
    schemas.update(definitions.get("$defs", {}))
    components["schemas"] = dict(sorted(schemas.items()))
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
