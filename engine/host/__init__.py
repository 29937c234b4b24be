"""The long-running process: the server wiring (`server`), the sweeps that drive timers, the
inbox and the outbox (`sweeps`, the only APScheduler user), the dispatcher (its claims in
flight, the providers' lanes of threads, the attempts, the send rates), the inbox's backlog,
the engine's turn lock and the sharded workers."""

from engine.host.server import Server, default_providers, tune_runtime

__all__ = ["Server", "default_providers", "tune_runtime"]
