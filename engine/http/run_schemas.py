"""The answers of the audience-run routes (engine/http/runs.py): documented, not validated (see
`engine.http.schemas`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Run(BaseModel):
    """One audience run: when it was due, how far it got and what it did."""

    model_config = ConfigDict(extra="allow")
    run_id: str
    journey_id: str
    version: str = Field(description="the journey version the run enters (the current one when it was made)")
    trigger: Literal["schedule", "at", "manual"] = Field(description="what made it: the schedule, the at instant, "
                                                         "or POST /v1/journeys/{id}/runs")
    status: Literal["pending", "running", "finished", "failed", "cancelled"]
    scheduled_at: str = Field(description="the instant it was due (RFC 3339)")
    created_at: str
    started_at: str | None
    finished_at: str | None
    late: bool = Field(description="made more than 30 s after its instant, or standing for missed ones (downtime)")
    late_seconds: float
    missed: int = Field(description="earlier instants missed during downtime, run as part of this one")
    profiles: int = Field(description="profiles looked at so far")
    matched: int = Field(description="profiles the audience matched")
    entered: int = Field(description="of those, entered (an instance started)")
    skipped: dict[str, int] = Field(description="profiles not entered, by reason: re_entry (matched, but re_entry "
                                    "refused), audience_error (the audience failed for the profile)")
    error: str | None = Field(description="why a failed or cancelled run ended")


class RunList(BaseModel):
    model_config = ConfigDict(extra="allow")
    runs: list[Run] = Field(description="the latest scheduled first")
