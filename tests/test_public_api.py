"""The curated public API of `engine` and `channels`, pinned name by name (as httpx pins its own):
adding or removing a public name is a decision, made here on purpose, never by accident."""

from __future__ import annotations

import subprocess
import sys

import channels
import engine

ENGINE_API = [
    "Cancel", "Clock", "CompiledJourney", "Engine", "EvaluationError", "Event", "EventError", "HostStore",
    "HttpError", "Ingested", "InputError", "Instance", "JourneyDefinitionError", "JourneyError",
    "JourneyNotFoundError", "MemoryStore", "Outbox", "OutboxItem", "Outcome", "Problem", "ReadViews", "Schedule",
    "Send", "Server", "Skip", "SqlStore", "Store", "StoreError", "SystemClock",
    "TemplateRenderError", "TemporaryStoreError", "Trace", "Tx", "VirtualClock", "carry_out", "create_app",
    "load_file", "load_paths", "load_text", "parse_event", "simulate",
]

CHANNELS_API = [
    "CHANNELS", "ChannelEngagement", "Choice", "ConsentRecord", "Decision", "Delivery", "FileError", "Keyword",
    "KeywordMatch", "KeywordOutcome", "Policy", "PolicyError", "Profile", "ProfileError", "Selection",
    "SelectionError", "SendRequest", "SentRecord", "SmsEncoding", "apply_keyword", "best_time", "cap_reached",
    "classify_keyword", "consent_reason", "consent_status", "effective_strategy", "load_policy", "next_local_time",
    "quiet_until", "reach", "recipient_region", "recipient_zone", "select", "sms_encoding",
]


def test_engine_exports_exactly_its_public_api() -> None:
    assert engine.__all__ == ENGINE_API
    assert all(getattr(engine, name) is not None for name in engine.__all__)


def test_channels_exports_exactly_its_public_api() -> None:
    assert channels.__all__ == CHANNELS_API
    assert all(getattr(channels, name) is not None for name in channels.__all__)


def test_every_engine_error_is_a_journey_error() -> None:
    errors = [getattr(engine, name) for name in engine.__all__ if name.endswith("Error")]
    assert errors and all(issubclass(error, engine.JourneyError) for error in errors)


def test_importing_engine_loads_no_server_framework() -> None:
    """The host's frameworks load only when `engine.Server`, `SqlStore` or `create_app` is used."""
    code = ("import sys, engine; heavy = {'sqlalchemy', 'sqlmodel', 'fastapi', 'apscheduler', 'uvicorn'}; "
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert engine.SqlStore.__name__ == "SqlStore" and engine.create_app.__name__ == "create_app"
