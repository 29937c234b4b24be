"""The HTTP API (FastAPI), its metrics and the provider webhook routes: a thin layer over the host."""

from engine.http.app import create_app

__all__ = ["create_app"]
