"""`journey profiles import FILE.jsonl`: profiles in bulk, one JSON object a line, straight into a
database (`--db`) or through a running server (`--url`, `POST /v1/profiles`), with a progress bar
and a summary of the lines refused and why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import Progress

from engine.cli.help import App
from engine.clock import SystemClock
from engine.errors import StoreError

BATCH = 1000
profiles_app = App(name="profiles", help="Profiles in bulk.", no_args_is_help=True)


@profiles_app.command("import")
def import_profiles(
    file: Path = typer.Argument(..., metavar="FILE", help="one profile a line (JSON Lines), each with its user_id"),
    db: str | None = typer.Option(None, "--db", metavar="URL", help="write straight into this database"),
    url: str | None = typer.Option(None, "--url", metavar="URL", help="or post to this server (e.g. http://127.0.0.1:8000)"),
    key: str | None = typer.Option(None, "--key", metavar="KEY", envvar="JOURNEY_API_KEY", help="the server's API key"),
) -> None:
    """Upsert every profile of FILE (fields replaced, consents appended), then list the lines refused."""
    if (db is None) == (url is None):
        raise _fail("give exactly one of --db (a database) or --url (a running server)")
    if not file.is_file():
        raise _fail(f"{file}: no such file")
    send = _to_database(db) if db is not None else _to_server(str(url), key)
    upserted = 0
    refused: list[tuple[int, str]] = []
    console = Console(stderr=True)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("profiles", total=file.stat().st_size)
        for lines, batch, done in _batches(file, refused):
            answer = send(batch)
            upserted += int(answer["upserted"])
            refused += [(lines[r["index"]], r["error"]) for r in answer["rejected"]]
            progress.update(task, completed=done)
    for line, error in sorted(refused):
        typer.echo(f"{file}:{line}: {error}", err=True)
    typer.echo(f"{upserted} profiles upserted, {len(refused)} refused")
    if refused:
        raise typer.Exit(1)


def _batches(file: Path, refused: list[tuple[int, str]]) -> Iterator[tuple[list[int], list[Any], int]]:
    """(line numbers, parsed profiles, bytes read so far) per batch; a line that is not JSON is refused."""
    lines: list[int] = []
    batch: list[Any] = []
    done = 0
    with file.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            done += len(raw)
            if not raw.strip():
                continue
            try:
                batch.append(json.loads(raw))
                lines.append(number)
            except ValueError as exc:
                refused.append((number, f"not JSON: {exc}"))
            if len(batch) == BATCH:
                yield lines, batch, done
                lines, batch = [], []
    if batch:
        yield lines, batch, done


def _to_database(db: str) -> Any:
    from engine.host.profiles import upsert_profiles  # the database stack loads only for this command
    from engine.stores.sql import SqlStore

    try:
        store = SqlStore(db)
    except StoreError as exc:
        raise _fail(str(exc)) from None
    clock = SystemClock()
    return lambda batch: upsert_profiles(store, batch, clock.now()).to_dict()


def _to_server(url: str, key: str | None) -> Any:
    import httpx

    client = httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {key}"} if key else {})

    def post(batch: list[Any]) -> dict[str, Any]:
        reply = client.post("/v1/profiles", json={"profiles": batch})
        if reply.status_code != 200:
            raise _fail(f"{url}: {reply.status_code} {reply.text[:300]}")
        answer: dict[str, Any] = reply.json()
        return answer

    return post


def _fail(message: str) -> typer.Exit:
    typer.echo(f"journey profiles import: {message}", err=True)
    return typer.Exit(1)
