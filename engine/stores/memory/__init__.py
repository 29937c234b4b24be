"""The in-memory store: the simulator's, the in-process server's in tests, and the reference the
SQL store is tested against. `base` holds the state, the real (undoable) transactions and the
engine's `Tx`; `host` adds the outbox, the journeys and the read views."""

from engine.stores.memory.host import MemoryStore

__all__ = ["MemoryStore"]
