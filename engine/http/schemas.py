"""The API's answers as pydantic models: the problem details, batch results, profiles and
consents, exports and dry runs (the journeys', messages' and runs' are in `journey_schemas`,
`message_schemas` and `run_schemas`). The request bodies are `engine.http.bodies`.

Handlers answer dicts built by the views (`engine.http.views`) and the engine's `to_dict`s; these
models document them (`documented(...)` in each route) for `/docs`, generated clients and the
schemathesis run, which checks every answer against them. Answers allow members not listed
(`extra="allow"`): clients should ignore what they do not know.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.http.bodies import ProfileFields, examples
from engine.http.message_schemas import FeedItem, Message, SkippedSend


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class FieldError(BaseModel):
    field: str = Field(description="the field at fault, as a path: `events[3].type`, `attributes.score`")
    message: str


class Problem(_Out):
    """RFC 9457 problem details: the body of every 4xx and 5xx (`application/problem+json`)."""

    model_config = ConfigDict(extra="allow", json_schema_extra=examples(
        {"type": "about:blank", "title": "Unprocessable Content", "status": 422,
         "detail": "user_id: required field is missing", "errors": [
             {"field": "user_id", "message": "required field is missing"}],
         "error": "user_id: required field is missing"}))
    type: str = Field("about:blank", description="`about:blank`: `title` is the status's phrase")
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(None, description="the fields at fault, when fields are at fault")
    error: str = Field(description="the same text as `detail`, for clients of the first release")


class Rejected(BaseModel):
    index: int
    error: str = Field(description="`field: problem`")


class BatchResult(_Out):
    model_config = ConfigDict(extra="allow", json_schema_extra=examples(
        {"accepted": 1, "duplicates": 0, "rejected": [{"index": 1, "error": "user_id: required field is missing"}]}))
    accepted: int
    duplicates: int
    rejected: list[Rejected]


class BulkResult(_Out):
    upserted: int
    rejected: list[Rejected]


class Consent(_Out):
    channel: str
    category: str
    granted: bool
    source: str | None = None
    at: str = Field(description="RFC 3339, UTC")


class Profile(ProfileFields):
    model_config = ConfigDict(extra="allow")
    user_id: str
    consents: list[Consent] = Field(description="the whole ledger, oldest first")


class ConsentList(_Out):
    user_id: str
    consents: list[Consent] = Field(description="the whole ledger, oldest first")


class LedgerRow(_Out):
    """A row of the consent audit trail: a user's consent change, or a STOP or START from a phone
    number (the suppression list: `user_id`, `channel` and `category` null, `number` set)."""

    user_id: str | None = Field(description="null for a row of the suppression list")
    number: str | None = Field(description="the phone number a STOP or START came from; null for a user's consent")
    channel: str | None = Field(description="null for a row of the suppression list (it holds for sms, mms, rcs)")
    category: str | None
    granted: bool = Field(description="false for a STOP")
    source: str | None = None
    at: str = Field(description="RFC 3339, UTC")


class ConsentFeed(_Out):
    consents: list[LedgerRow]
    next_cursor: str | None = Field(description="pass back as `cursor`; null once there are no more")


class Suppression(_Out):
    number: str
    keyword: str
    at: str
    source: str | None = None


class Export(_Out):
    """Everything held about one person."""

    user_id: str
    profile: dict[str, Any] | None
    consents: list[Consent]
    suppressions: list[Suppression]
    messages: list[Message]
    skipped: list[SkippedSend]
    instances: list[dict[str, Any]]
    feed: list[FeedItem] = Field(description="the in-app feed, archived messages included, newest first")
    exported_at: str


class SimulationSummary(_Out):
    users: int
    entered: int
    completed: int
    exited: int
    converted: int
    active: int
    failed: int
    messages: dict[str, int]
    cost: float


class Simulation(_Out):
    """The simulate document (docs/cli.md)."""

    journey: str
    summary: SimulationSummary
    messages: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    instances: list[dict[str, Any]]
    timeline: list[dict[str, Any]]


class WebhookAck(_Out):
    accepted: int | None = None
    duplicates: int | None = None
    ignored: str | None = None
    secret: str | None = Field(None, description="RBM's webhook verification: the secret it sent")


class Health(_Out):
    status: str = Field(description="`ok` (liveness) or `ready` (the database answers)")
