"""journey-engine: YAML journeys, validated and compiled to graphs, evaluated against events on
a store and a clock of your choosing, choosing channels by urgency, cost and reach.

The public Python API, in three layers::

    load_file / load_paths / load_text      journey files -> CompiledJourney (JourneyDefinitionError)
    simulate                                 a dry run on a virtual clock (the docs/cli.md document)
    Engine                                   events and timers in, state and messages out, on a Store
    Server, SqlStore, create_app             the long-running host, the durable store, the HTTP app

`Server`, `SqlStore` and `create_app` are imported on first use, so `import engine` stays light
(no SQLAlchemy, FastAPI or APScheduler until you ask for them). The list is pinned by a test.
"""

from __future__ import annotations

import importlib
from typing import Any

from engine.clock import Clock, SystemClock, VirtualClock
from engine.compiler import CompiledJourney, load_file, load_paths, load_text
from engine.errors import (
    EvaluationError,
    EventError,
    HttpError,
    InputError,
    JourneyDefinitionError,
    JourneyError,
    JourneyNotFoundError,
    Problem,
    StoreError,
    TemplateRenderError,
    TemporaryStoreError,
)
from engine.events import Event, parse_event
from engine.ports import HostStore, Outbox, OutboxItem, ReadViews, Store, Tx, carry_out
from engine.service import Engine
from engine.simulator import simulate
from engine.state import Cancel, Ingested, Instance, Outcome, Schedule, Send, Skip, Trace
from engine.stores.memory import MemoryStore

_LAZY = {"Server": "engine.host", "SqlStore": "engine.stores.sql", "create_app": "engine.http"}

__all__ = [
    "Cancel",
    "Clock",
    "CompiledJourney",
    "Engine",
    "EvaluationError",
    "Event",
    "EventError",
    "HostStore",
    "HttpError",
    "Ingested",
    "InputError",
    "Instance",
    "JourneyDefinitionError",
    "JourneyError",
    "JourneyNotFoundError",
    "MemoryStore",
    "Outbox",
    "OutboxItem",
    "Outcome",
    "Problem",
    "ReadViews",
    "Schedule",
    "Send",
    "Server",
    "Skip",
    "SqlStore",
    "Store",
    "StoreError",
    "SystemClock",
    "TemplateRenderError",
    "TemporaryStoreError",
    "Trace",
    "Tx",
    "VirtualClock",
    "carry_out",
    "create_app",
    "load_file",
    "load_paths",
    "load_text",
    "parse_event",
    "simulate",
]


def __getattr__(name: str) -> Any:
    """The host, the SQL store and the HTTP app load their frameworks only when first asked for."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
