"""Providers that never leave the machine: the default outbox file and the console."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import TextIO

from channels.json_text import dump_json
from channels.providers.base import OutboundMessage, TemporaryDeliveryError


class FileProvider:
    """Appends one JSON line per message: `./outbox.jsonl` when no providers file is given.

    Lines are buffered: `flush` hands them to the operating system. The dispatcher flushes before
    it records any of them sent, so a killed process loses nothing it reported sent (a flush per
    window of answers recorded together, not per message: a system call saved per line).
    A caller of `send` of its own calls `flush` too (or `close`)."""

    name = "file"

    def __init__(self, path: str | Path = "outbox.jsonl") -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._handle: TextIO | None = None

    def send(self, message: OutboundMessage) -> str:
        line = dump_json(message.to_dict())
        try:
            with self._lock:
                if self._handle is None or self._handle.closed:
                    self._handle = self.path.open("a", encoding="utf-8")
                self._handle.write(line + "\n")
        except OSError as exc:
            self._drop()
            raise TemporaryDeliveryError(f"{self.path}: {exc.strerror}") from exc
        return f"file:{message.message_id}"

    def flush(self) -> None:
        """The lines sent so far, to the operating system; TemporaryDeliveryError if they cannot go."""
        try:
            with self._lock:
                if self._handle is not None and not self._handle.closed:
                    self._handle.flush()
        except OSError as exc:
            self._drop()
            raise TemporaryDeliveryError(f"{self.path}: {exc.strerror}") from exc

    def _drop(self) -> None:
        """After a write that failed: the handle closed with what it could not write thrown away,
        so that no line of a send reported failed reaches the file later (when the handle would
        be collected, the disk having room again) besides the line of its retry."""
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.close()  # its flush fails again; the file is closed all the same

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def forget(self, user_id: str) -> int:
        """Erasure reaches the outbox file: the person's lines are dropped (the file is written
        anew beside it, then swapped in). Returns how many were dropped."""
        with self._lock:
            self._close()
            if not self.path.exists():
                return 0
            lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
            kept = [line for line in lines if not _of_user(line, user_id)]
            if len(kept) < len(lines):
                fresh = self.path.with_name(self.path.name + ".erasing")
                fresh.write_text("".join(kept), encoding="utf-8")
                os.replace(fresh, self.path)
            return len(lines) - len(kept)


def _of_user(line: str, user_id: str) -> bool:
    try:
        return bool(json.loads(line).get("user_id") == user_id)
    except (ValueError, AttributeError):
        return False


class ConsoleProvider:
    """Prints each message as a JSON line, for trying journeys out by hand."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def send(self, message: OutboundMessage) -> str:
        print(json.dumps(message.to_dict(), ensure_ascii=False), file=self.stream, flush=True)
        return f"console:{message.message_id}"
