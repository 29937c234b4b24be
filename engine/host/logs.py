"""The server's logs: one line per record, JSON or text, with phone numbers, email addresses and
the codes of tracked links masked in everything written (`journey serve --log-format json|text --log-level LEVEL`).

Records carry their ids as fields (`log.info("sent", extra=fields(user=..., message_id=...))`):
JSON puts them beside `time`, `level`, `logger` and `msg`; text writes them as `key=value`.
`configure` is called by `journey serve` only: a library user's logging is their own, and
`journey bench` leaves it alone, so the hot path pays for a line only where one is wanted
(`log.isEnabledFor(logging.INFO)` first, then build it).

Loggers: `journey.ingest` (one line per batch), `journey.decisions` (a send or a skip, after
commit), `journey.dispatcher` (each attempt's result: sent, cancelled, retry, failed),
`journey.server` (failures), `journey.sweeps`, `journey.serve`, `journey.tracking` (a hit on a
tracked link or pixel: its message, first, machine), and uvicorn's access log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from channels.selection import shown
from engine.events import format_time
from engine.state import DEFER_REASON, Outcome, Schedule, Send, Skip

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
QUIET = ("apscheduler", "httpx", "httpcore", "twilio", "urllib3")
"""Libraries that log each request or job at INFO: warnings and above only."""

EMAIL = re.compile(r"(?<!://)(?<![A-Za-z0-9._%+-])([A-Za-z0-9_])[A-Za-z0-9._%+-]*(@|%40)"
                   r"((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})(?![A-Za-z0-9-])")
"""Addresses whose domain ends in a name (`.com`, not `.1`), and not a URL's user name (`://user@host`)."""
PHONE = re.compile(r"(\+|%2[Bb])(\d{8,15})(?!\d)")
"""E.164-looking numbers, `+` or its URL escape `%2B` then 8 to 15 digits."""
CODE = re.compile(r"(/[lo]/)[A-Za-z0-9]{8,64}(?![A-Za-z0-9])")
"""A tracked link's or open pixel's code in a path (`/l/X7bQ2mKp9Z`): whoever holds it records hits."""
HIDDEN = "\u2022\u2022\u2022"

ingest_log = logging.getLogger("journey.ingest")
decisions_log = logging.getLogger("journey.decisions")
sweeps_log = logging.getLogger("journey.sweeps")
dispatch_log = logging.getLogger("journey.dispatcher")
_uncaught = logging.getLogger("journey.uncaught")


def fields(**values: Any) -> dict[str, Any]:
    """`extra=` for a record with ids: `None` values are left out."""
    return {"fields": {k: v for k, v in values.items() if v is not None}}


def mask(text: str) -> str:
    """`ann@example.com` -> `a•••@example.com`, `+14155550100` -> `+1415•••0100`, `/l/X7bQ2mKp9Z` -> `/l/•••`."""
    if "/l/" in text or "/o/" in text:
        text = CODE.sub(lambda m: f"{m[1]}{HIDDEN}", text)
    if "@" in text or "%40" in text:
        text = EMAIL.sub(lambda m: f"{m[1]}{HIDDEN}{m[2]}{m[3]}", text)
    if "+" in text or "%2" in text:
        text = PHONE.sub(_masked_phone, text)
    return text


def _masked_phone(match: re.Match[str]) -> str:
    digits = match[2]
    keep = 4 if len(digits) >= 11 else 2
    return f"{match[1]}{digits[:keep]}{HIDDEN}{digits[-keep:]}"


class MaskFilter(logging.Filter):
    """Masks every record on its way out: the message with its arguments, the fields, the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, _, status = record.args
            record.__dict__["fields"] = {"client": client, "method": method, "path": path, "status": status}
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string still gets a (masked) line
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = mask(message), None
        values = getattr(record, "fields", None)
        if values:
            record.__dict__["fields"] = {k: mask(v) if isinstance(v, str) else v for k, v in values.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


def _time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, msg, then the record's fields (and `exc`)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {"time": _time(record), "level": record.levelname.lower(), "logger": record.name,
                                "msg": record.getMessage()}
        for key, value in (getattr(record, "fields", None) or {}).items():
            data.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exc"] = record.exc_text
        if record.stack_info:
            data["stack"] = record.stack_info
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger msg key=value ...`, then the traceback if any (an access line's fields
    are its message already)."""

    def format(self, record: logging.LogRecord) -> str:
        values = getattr(record, "fields", None) if record.name != "uvicorn.access" else None
        pairs = " ".join(f"{k}={_text(v)}" for k, v in (values or {}).items())
        line = f"{_time(record)} {record.levelname.lower()} {record.name} {record.getMessage()}"
        line = f"{line} {pairs}" if pairs else line
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        return f"{line}\n{record.exc_text}" if record.exc_text else line


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text, ensure_ascii=False) if not text or any(c in text for c in ' "=\n') else text


_handler: logging.Handler | None = None


def configure(format: str = "text", level: str = "info", stream: TextIO | None = None) -> None:
    """Send every record (the engine's, uvicorn's, warnings, uncaught exceptions) through one
    masked handler on stderr. Calling it again replaces the previous configuration."""
    global _handler
    if format not in FORMATS or level not in LEVELS:
        raise ValueError(f"log format {format!r} / level {level!r}: expected one of {FORMATS} / {LEVELS}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(MaskFilter())
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    _handler = handler
    number = logging.getLevelName(level.upper())
    root.setLevel(number)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # uvicorn.run(log_config=None) adds none
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    for name in QUIET:
        logging.getLogger(name).setLevel(max(number, logging.WARNING))
    logging.captureWarnings(True)
    sys.excepthook = lambda kind, exc, tb: _uncaught.critical("uncaught exception", exc_info=(kind, exc, tb))
    threading.excepthook = _thread_failed


def _thread_failed(args: threading.ExceptHookArgs) -> None:
    _uncaught.error("uncaught exception in a thread", extra=fields(thread=args.thread.name if args.thread else None),
                    exc_info=args.exc_value)


def log_batch(via: str, events: int, duplicates: int, rejected: int = 0) -> None:
    """One line per batch taken in: `ingest` (processed now) or `accept` (queued)."""
    if ingest_log.isEnabledFor(logging.INFO):
        ingest_log.info("batch", extra=fields(via=via, events=events, accepted=events - duplicates,
                                               duplicates=duplicates, rejected=rejected))


def log_decisions(outcomes: Sequence[Outcome]) -> None:
    """One line per send or skip of a committed transaction (the engine keeps its outcomes for
    this only while `journey.decisions` logs at INFO)."""
    for outcome in outcomes:
        instance = outcome.instance
        ids = {"journey": instance.journey_id, "version": instance.version, "instance": instance.instance_id} \
            if instance is not None else {}
        for command in outcome.commands:
            if isinstance(command, Send):
                decisions_log.info("send", extra=fields(user=command.user_id, **ids, step=command.step,
                                                        message=command.message, channel=command.channel,
                                                        message_id=command.message_id, **_chosen(command)))
            elif isinstance(command, Skip):
                decisions_log.info("skip", extra=fields(user=command.user_id, **ids, step=command.step,
                                                        message=command.message, reason=command.reason,
                                                        channels=_refused(command), detail=command.detail))
            elif isinstance(command, Schedule) and command.timer.kind == "defer":
                decisions_log.info("defer", extra=fields(user=command.user_id, **ids, step=instance and instance.step,
                                                         message=command.message, reason=DEFER_REASON,
                                                         until=format_time(command.timer.due)))


def _chosen(send: Send) -> dict[str, Any]:
    """strategy auto's explanation: every candidate's figures (`push:0.80@0.0001 sms:0.33@0.0083`,
    reach at cost), the order and the one-line reason."""
    if send.choice is None:
        return {}
    figures = " ".join(f"{d.get('fallback') or d['channel']}:{d['reach']:.2f}@{d['cost']:.4f}"
                       for d in shown(send.decisions, send.choice) if "reach" in d)
    return {"reach": figures or None, "order": ",".join(send.choice.order), "why": send.choice.reason}


def _refused(skip: Skip) -> str | None:
    """Why each channel was not eligible: `email:no_address sms:opted_out`."""
    return " ".join(f"{d.channel}:{d.reason}" for d in skip.decisions if not d.eligible) or None


def log_sweep(sweep: str, handled: int, seconds: float) -> None:
    """A sweep run: INFO when it handled something, DEBUG when it found nothing."""
    level = logging.INFO if handled else logging.DEBUG
    if sweeps_log.isEnabledFor(level):
        sweeps_log.log(level, "sweep", extra=fields(sweep=sweep, handled=handled, ms=round(seconds * 1000, 1)))


def log_dispatch(result: Mapping[str, Any], user_id: str, channel: str) -> None:
    """One line per message the dispatcher settled: sent, cancelled, waiting (retry, quiet hours), failed."""
    level = logging.WARNING if result["dispatch"] == "failed" else logging.INFO
    if dispatch_log.isEnabledFor(level):
        dispatch_log.log(level, result["dispatch"], extra=fields(
            message_id=result["message_id"], user=user_id, channel=channel, provider=result["provider"],
            status=result["status"], attempts=result["attempts"], error=result["error"],
            retry_at=format_time(result["next_attempt_at"]) if result["next_attempt_at"] else None))
