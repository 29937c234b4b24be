"""The in-memory store: the simulator's, the in-process server's in tests, and the reference the
SQL store is tested against. `data` holds the state and the undo log that makes transactions
real; `tx` is the engine's `Tx`; `outbox`, `views`, `journeys`, `runs` and `privacy` are the
host's ports, one class each; `store` composes them."""

from engine.stores.memory.store import MemoryStore

__all__ = ["MemoryStore"]
