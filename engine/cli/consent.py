"""`journey consent export`: the consent audit trail, read straight from the database (no server
needed), every user's ledger rows in the order they were written, as JSON Lines or CSV."""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path

import typer

from engine.cli.help import App
from engine.errors import EventError, StoreError
from engine.events import parse_time
from engine.ports import Privacy
from engine.stores.privacy import Position, consent_trail

PAGE = 1000
COLUMNS = ("user_id", "number", "channel", "category", "granted", "source", "at")

consent_app = App(name="consent", help="The consent ledger: the audit trail of every consent change.",
                          no_args_is_help=True)


class LedgerFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


@consent_app.command("export")
def export(
    db: str = typer.Option(..., "--db", metavar="URL",
                           help="database URL (sqlite:///file or postgresql+psycopg://...)"),
    since: str | None = typer.Option(None, "--since", metavar="T", help="only records at or after this RFC 3339 time"),
    format: LedgerFormat = typer.Option(LedgerFormat.jsonl, "--format", metavar="jsonl|csv",
                                        help="jsonl or csv (with a header row)"),
) -> None:
    """Write the consent audit trail to stdout, in the order it was written.

    Every user's ledger rows (erased people's included: they are the proof of past consent),
    and the numbers a STOP put on the suppression list."""
    from engine.stores.sql import SqlStore  # the database stack loads only for this command

    try:
        start = parse_time(since, "--since") if since is not None else None
    except EventError as exc:
        raise _fail(str(exc)) from None
    if db.startswith("sqlite:///") and not Path(db.removeprefix("sqlite:///")).is_file():
        raise _fail(f"{db}: no such database file")  # opening would create an empty one
    try:
        store = SqlStore(db)
    except StoreError as exc:
        raise _fail(str(exc)) from None
    try:
        _write(store.privacy, start, format)
    except StoreError as exc:
        raise _fail(str(exc)) from None
    finally:
        store.close()


def _write(store: Privacy, since: datetime | None, format: LedgerFormat) -> None:
    """Page through the feed (as `GET /v1/consents` does) so memory stays flat however long it is."""
    out = sys.stdout
    writer = csv.writer(out, lineterminator="\n") if format is LedgerFormat.csv else None
    if writer is not None:
        writer.writerow(COLUMNS)
    position: Position | None = (0, 0)
    while position is not None:
        page, position = consent_trail(store, since, position, PAGE)
        for entry in page:
            row = entry.to_dict()
            if writer is not None:
                writer.writerow([str(row[c]).lower() if c == "granted" else row[c] for c in COLUMNS])
            else:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(1)
