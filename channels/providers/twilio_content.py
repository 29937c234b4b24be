"""Rich RCS content through Twilio's Content API: what a message's `rcs` content becomes there, and
the content SIDs already created.

Twilio sends cards, carousels and chips only as Content resources (`POST
https://content.twilio.com/v1/Content` with `friendly_name`, `language` and `types`), sent by
their `ContentSid`. The types used (https://www.twilio.com/docs/content/content-types-overview):

- a card: `twilio/card` (`title`, `body` the text and description, `media`, `actions`: the card's
  chips, then the message's);
- a carousel: `twilio/carousel` (`cards` of `title`, `body`, `media`, `actions`; Twilio drops a
  carousel's body on RCS), its message chips following in a second message;
- a text with chips: `twilio/quick-reply` (only reply chips), `twilio/call-to-action` (only URL
  and phone actions), else `twilio/card` with a body and actions (an RCS chip list).

Actions are `QUICK_REPLY` (its `id` is the chip's postback: Twilio returns it as the inbound's
`ButtonPayload`, https://www.twilio.com/en-us/changelog/rcs-button-payload), `URL` and
`PHONE_NUMBER`. Twilio has no calendar or map action: a calendar event becomes a URL that opens
Google Calendar's new-event page, a location one that opens Google Maps; a share-location chip
has no counterpart and is left out (logged).

One Content resource is created per distinct rendered content (its digest), kept in memory and
in a JSON Lines file (`digest`, `sid`), so a restart does not create it again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from channels.rcs import Card, Chip, RcsMessage

log = logging.getLogger("journey.providers")

Types = dict[str, Any]


def content_types(rcs: RcsMessage) -> list[Types]:
    """The Content API `types` of the messages one rich RCS message becomes, in sending order."""
    chips = _actions(rcs.suggestions)
    if rcs.carousel:
        body = rcs.text or rcs.carousel[0].title or "-"
        carousel = {"twilio/carousel": {"body": body, "cards": [_carousel_card(c) for c in rcs.carousel]}}
        return [carousel, _chip_list(rcs.text or "-", chips)] if chips else [carousel]
    if rcs.card is not None:
        return [{"twilio/card": _card(rcs.card, rcs.text, chips)}]
    return [_chip_list(rcs.text or "", chips)]


def _card(card: Card, text: str | None, chips: list[dict[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if card.title:
        found["title"] = card.title
    body = "\n\n".join(part for part in (text, card.description) if part)
    if body:
        found["body"] = body
    if card.media is not None:
        found["media"] = [card.media.url]
    actions = _actions(card.suggestions) + chips
    if actions:
        found["actions"] = actions
    return found


def _carousel_card(card: Card) -> dict[str, Any]:
    found: dict[str, Any] = {k: v for k, v in (("title", card.title), ("body", card.description)) if v}
    if card.media is not None:
        found["media"] = card.media.url
    if card.suggestions:
        found["actions"] = _actions(card.suggestions)
    return found


def _chip_list(body: str, actions: list[dict[str, Any]]) -> Types:
    kinds = {a["type"] for a in actions}
    if kinds == {"QUICK_REPLY"}:
        return {"twilio/quick-reply": {"body": body, "actions": actions}}
    if kinds <= {"URL", "PHONE_NUMBER"}:
        return {"twilio/call-to-action": {"body": body, "actions": actions}}
    return {"twilio/card": {"body": body, "actions": actions}}


def _actions(chips: tuple[Chip, ...]) -> list[dict[str, Any]]:
    actions = []
    for chip in chips:
        action = _action(chip)
        if action is None:
            log.warning("a %s chip has no Twilio counterpart: left out", chip.kind)
        else:
            actions.append(action)
    return actions


def _action(chip: Chip) -> dict[str, Any] | None:
    if chip.kind == "reply":
        return {"type": "QUICK_REPLY", "title": chip.text, "id": chip.postback}
    if chip.kind == "dial":
        return {"type": "PHONE_NUMBER", "title": chip.text, "phone": chip.phone}
    url = {"open_url": chip.url, "calendar_event": _calendar_url(chip), "view_location": _map_url(chip)}.get(chip.kind)
    return None if url is None else {"type": "URL", "title": chip.text, "url": url}


def _calendar_url(chip: Chip) -> str | None:
    """Google Calendar's new-event page for the chip's event (`dates` in UTC, basic format)."""
    if chip.kind != "calendar_event" or not chip.start or not chip.end:
        return None
    dates = "/".join(_basic(t) for t in (chip.start, chip.end))
    query = {"action": "TEMPLATE", "text": chip.title or "", "dates": dates, "details": chip.description or ""}
    return "https://calendar.google.com/calendar/render?" + urlencode({k: v for k, v in query.items() if v})


def _basic(instant: str) -> str:
    """RFC 3339 (checked when the content was rendered) as UTC in ISO 8601's basic format."""
    parsed = datetime.fromisoformat(instant.strip().replace("z", "Z"))
    return (parsed.astimezone(UTC) if parsed.tzinfo else parsed).strftime("%Y%m%dT%H%M%SZ")


def _map_url(chip: Chip) -> str | None:
    """Google Maps' search for the chip's place (https://developers.google.com/maps/documentation/urls)."""
    if chip.kind != "view_location":
        return None
    place = chip.query if chip.latitude is None else f"{chip.latitude},{chip.longitude}"
    return "https://www.google.com/maps/search/?api=1&query=" + quote(str(place), safe="")


def digest(types: Types, language: str) -> str:
    """The identity of one rendered content: equal content, equal digest, one Content resource."""
    canonical = json.dumps({"language": language, "types": types}, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ContentCache:
    """Content SIDs by digest: in memory, and appended to `path` (JSON Lines) when one is given.

    A provider sends from several threads at once, and the first messages of a campaign all need
    the same new content: `sid` has one of them create it while the others wait for its SID (a
    lock per digest), so Twilio holds one resource per content, not one per thread."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._sids: dict[str, str] = {}
        self._lock = threading.Lock()
        self._creating: dict[str, threading.Lock] = {}
        if self.path is not None and self.path.is_file():
            self._sids.update(_read(self.path))

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._sids.get(key)

    def sid(self, key: str, create: Callable[[], str]) -> str:
        """The SID kept for `key`, else the one `create()` returns, kept. Only one caller at a time
        creates a given key; a failed `create` raises to its caller and the next one tries again."""
        with self._lock:
            found = self._sids.get(key)
            if found is not None:
                return found
            creating = self._creating.setdefault(key, threading.Lock())
        with creating:
            found = self.get(key)
            if found is None:
                found = create()
                self.put(key, found)
        with self._lock:
            self._creating.pop(key, None)
        return found

    def put(self, key: str, sid: str) -> None:
        with self._lock:
            self._sids[key] = sid
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as out:  # one short line: appended whole
                    out.write(json.dumps({"digest": key, "sid": sid}) + "\n")

    def __len__(self) -> int:
        with self._lock:
            return len(self._sids)


def _read(path: Path) -> Mapping[str, str]:
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash: that content is created again
        if isinstance(row, dict) and isinstance(row.get("digest"), str) and isinstance(row.get("sid"), str):
            found[row["digest"]] = row["sid"]
    return found
