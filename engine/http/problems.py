"""One error format for the whole API: RFC 9457 problem details (`application/problem+json`).

Every 4xx and 5xx answers `{"type", "title", "status", "detail"}`, plus `errors: [{field,
message}]` when fields are at fault, whoever raised it: a handler (`HttpError`), the engine
(`JourneyError`), the store (503 with `Retry-After`), FastAPI itself (an unknown route, a wrong
method, a missing query parameter), the bearer check, the webhooks, or a bug (500). `type` is
`about:blank`, so `title` is the status's own phrase and `detail` says what happened.

A body that breaks its model (`engine.http.bodies`) is a 422 whose `errors` come from pydantic's,
each naming its field as a path (`events[3].type`, `consents[0].at`) with the engine's words
(`validation_errors`). Other errors name the field first in their message (`user_id: ...`), so
`errors` is read off the message rather than kept twice. The legacy member `error` (the same text
as `detail`) stays for clients written against the first release; RFC 9457 allows extension members.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute

from channels.profile import field_path
from engine.errors import HttpError, JourneyError, StateConflictError, StoreError, StoreValueError, TemporaryStoreError
from engine.host.server import Server

log = logging.getLogger("journey.http")
PROBLEM_JSON = "application/problem+json"
RETRY_AFTER = "5"  # seconds, while the database is unreachable
_FIELD = re.compile(r"([A-Za-z_][\w\-]*(?:\[\d+\])*(?:\.[\w\-]+(?:\[\d+\])*)*): (?=\S)")  # `events[3].type: `


def field_errors(detail: str) -> list[dict[str, str]]:
    """`[{field, message}]` read off a message that names its fields: `a: x` or `a: x; b.c: y`.
    Nested prefixes join (`events[0]: type: missing` is field `events[0].type`). Empty when the
    message does not start with a field name (`body is not valid JSON: ...`)."""
    parts = detail.split("; ")
    if not all(_FIELD.match(part) for part in parts):
        parts = [detail]
    errors = []
    for part in parts:
        names, rest = [], part
        while (match := _FIELD.match(rest)) is not None:
            names.append(match.group(1))
            rest = rest[match.end():]
        if names:
            errors.append({"field": ".".join(names), "message": rest})
    return errors


WORDS = {"missing": "required field is missing", "extra_forbidden": "unknown field"}
"""pydantic's words that the engine says otherwise; the rest are pydantic's own (`Input should be a
valid boolean`), and the body models' rules speak the engine's (`engine.http.fields`)."""


def validation_errors(errors: Iterable[Mapping[str, Any]], place: str | None = None) -> list[dict[str, str]]:
    """pydantic's errors as `[{field, message}]`, each field a path (`events[3].type`,
    `consents[0].at`, `properties.total`) within `place` (an item of a batch: `event`), or, for
    FastAPI's errors, within the place their path begins with (`body`, `query`); an error about
    the whole of it names the place."""
    found = []
    for error in errors:
        loc, where = tuple(error["loc"]), place
        if where is None:
            where, loc = (str(loc[0]), loc[1:]) if loc else ("body", loc)
        below = (error.get("ctx") or {}).get("below", "")
        path = (field_path(loc) + below).lstrip(".")
        message = WORDS.get(error["type"], str(error["msg"]).removeprefix("Value error, "))
        found.append({"field": path or where, "message": message})
    return found


def describe(errors: Iterable[Mapping[str, str]]) -> str:
    """`field: message; field: message`, the form every error of the API takes."""
    return "; ".join(f"{e['field']}: {e['message']}" for e in errors)


def problem_body(status: int, detail: str, errors: list[dict[str, str]] | None = None,
                 **extra: Any) -> dict[str, Any]:
    """The problem document; `errors` defaults to the fields `detail` names."""
    found = field_errors(detail) if errors is None else errors
    body: dict[str, Any] = {"type": "about:blank", "title": _title(status), "status": status, "detail": detail}
    if found:
        body["errors"] = found
    return {**body, "error": detail, **extra}


def problem(status: int, detail: str, headers: dict[str, str] | None = None,
            errors: list[dict[str, str]] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse(problem_body(status, detail, errors, **extra), status_code=status, media_type=PROBLEM_JSON,
                        headers=headers)


def unavailable(detail: str) -> JSONResponse:
    """503 while the database is unreachable, with when to try again."""
    return problem(503, detail, {"Retry-After": RETRY_AFTER})


def install_problem_handlers(app: FastAPI, server: Server, routes: Iterable[BaseRoute]) -> None:
    """Answer every exception as problem details, FastAPI's own 404, 405 and 422 included (a 405's
    `Allow` from every route of the path, `routes` being the API's)."""
    every_route = [*app.router.routes, *routes]

    @app.exception_handler(HttpError)
    async def _http_error(_: Request, exc: HttpError) -> JSONResponse:
        return problem(exc.status, exc.message)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError) -> JSONResponse:
        """503 only for an outage (the database cannot be reached); a value it refused is the
        request's fault; any other refusal is a bug."""
        if isinstance(exc, TemporaryStoreError):
            server.outage.failed(exc)
            return unavailable(f"the database is unavailable: {exc}")
        if isinstance(exc, StoreValueError):
            return problem(422, f"the database refused a value of this request: {exc}")
        log.error("the database refused a statement of %s %s", request.method, request.url.path, exc_info=exc)
        return problem(500, "internal error: the server log has the details")

    @app.exception_handler(JourneyError)
    async def _journey_error(_: Request, exc: JourneyError) -> JSONResponse:
        return problem(404 if isinstance(exc, LookupError) else 409 if isinstance(exc, StateConflictError) else 422,
                       str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _starlette_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            allowed = headers["Allow"] = allowed_methods(request, every_route) or headers.get("Allow", "")
            detail = f"{request.method} is not allowed on {request.url.path}" + (f" (allowed: {allowed})"
                                                                                  if allowed else "")
        return problem(exc.status_code, detail, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc.errors())
        return problem(422, describe(errors), errors=errors)

    @app.exception_handler(Exception)
    async def _bug(_: Request, __: Exception) -> JSONResponse:
        """A bug: Starlette still re-raises the exception after this answer, so the server logs it."""
        return problem(500, "internal error: the server log has the details")


def allowed_methods(request: Request, routes: Iterable[BaseRoute]) -> str:
    """`Allow` for the path asked: every method of every route on it, not only the first route's (the
    router's own 405 names one route's); a literal path (`/v1/journeys/reload`) wins over a template
    that also matches it (`/v1/journeys/{journey_id}`), as in the OpenAPI document."""
    path = request.url.path
    matching = [r for r in routes if isinstance(r, APIRoute) and r.path_regex.match(path)]
    fewest = min((len(r.param_convertors) for r in matching), default=0)
    methods = {m for r in matching if len(r.param_convertors) == fewest for m in r.methods or ()}
    return ", ".join(sorted(methods))


RFC_9110_TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}
"""Where Python's phrase is older than RFC 9110's (Python 3.13 has these; 3.11 says `Request
Entity Too Large` and `Unprocessable Entity`): one title whatever the interpreter."""


def _title(status: int) -> str:
    if status in RFC_9110_TITLES:
        return RFC_9110_TITLES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
