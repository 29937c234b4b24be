"""The `journey` command: typer commands, report tables and graph rendering. Thin: it parses
arguments, calls the engine and prints."""

from engine.cli.main import app

__all__ = ["app"]
