"""One instance's failure is its own: whatever evaluating it raises (a template, an expression,
a missing definition, a bug) ends that instance `failed` with the reason, and its batch goes on.
The store's own errors are not the instance's fault: they propagate (the batch rolls back)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from engine.errors import StoreError
from engine.runtime import Runtime
from engine.state import Instance, Outcome


def guarded(runtime: Runtime, instance: Instance, evaluate: Callable[[], Outcome], now: datetime) -> Outcome:
    """`evaluate()` (the instance's version found, then evaluated), or the instance's end as
    `failed` if that raises."""
    try:
        return evaluate()
    except StoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - isolating any failure is the point
        return failed(runtime, instance, exc, now)


def failed(runtime: Runtime, instance: Instance, exc: Exception, now: datetime) -> Outcome:
    return runtime.end(instance, "failed", f"{type(exc).__name__}: {exc}", now)
