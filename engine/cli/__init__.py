"""The `journey` command: typer commands, report tables and graph rendering. Thin: it parses
arguments, calls the engine and prints.

`main` is the console script: `app`, with a missing optional dependency turned into the extra
to install. The core (validate, graph, schema, simulate) needs none; the server, PostgreSQL
and the Twilio and FCM providers are extras (pyproject.toml)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from itertools import takewhile

from engine.cli.main import app

EXTRAS = {"uvicorn": "server", "fastapi": "server", "starlette": "server", "sqlmodel": "server",
          "sqlalchemy": "server", "apscheduler": "server", "httpx": "server", "prometheus_client": "server",
          "fastapi_offline": "server",
          "psycopg": "postgres", "twilio": "twilio", "cryptography": "fcm", "matplotlib": "plot"}
"""The root of each optional module and the extra that brings it."""


def main(argv: Sequence[str] | None = None) -> None:
    """`journey ...`: exit 1 naming the extra when a command needs one that is not installed."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="journey")
    except ModuleNotFoundError as exc:
        extra = EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        command = " ".join(["journey", *takewhile(lambda a: not a.startswith("-"), sys.argv[1:] if argv is None
                                                  else argv)])
        print(f"{command} needs the {extra} extra: pip install 'journey-engine[{extra}]'", file=sys.stderr)
        raise SystemExit(1) from None


__all__ = ["app", "main"]
