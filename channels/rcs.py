"""RCS content: the limits of Google's RCS Business Messaging API, and one reading of a message's
`rcs` content that every provider translates from.

The limits are those of the RBM reference for `phones.agentMessages`
(https://developers.google.com/business-communications/rcs-business-messaging/reference/rest/v1/phones.agentMessages),
the same numbers as AWS End User Messaging's "RCS limits and restrictions"
(https://docs.aws.amazon.com/sms-voice/latest/userguide/sms-limitations-rcs.html): a text of
3,072 characters; at most 11 suggestions under a message and 4 on a card; 25 characters of chip
text and 2,048 of postback data; a card title of 200 characters and a description of 2,000; a
carousel of 2 to 10 cards, whose media are short or medium (tall only on a standalone card); a
media URL of 2,000 characters; a dial number in E.164; a calendar event's title of 100 characters
and description of 500 (AWS's `RcsCreateCalendarEventAction`,
https://docs.aws.amazon.com/pinpoint/latest/apireference_smsvoicev2/API_RcsCreateCalendarEventAction.html).

`rcs_problems` is the one check: `journey validate` runs it on the content as written (a field
that is a template is measured once rendered), and every render runs it on the rendered
content, so a template that renders too long fails the rcs channel (`template_error`) rather
than the provider's call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

TEXT_MAX = 3072
SUGGESTIONS_MAX = 11
CARD_SUGGESTIONS_MAX = 4
CHIP_TEXT_MAX = 25
POSTBACK_MAX = 2048
TITLE_MAX = 200
DESCRIPTION_MAX = 2000
CAROUSEL_MIN, CAROUSEL_MAX = 2, 10
URL_MAX = 2000
CALENDAR_TITLE_MAX, CALENDAR_DESCRIPTION_MAX = 100, 500
HEIGHTS = ("short", "medium", "tall")
CAROUSEL_HEIGHTS = ("short", "medium")
WIDTHS = ("small", "medium")
ORIENTATIONS = ("vertical", "horizontal")
CHIP_KINDS = ("reply", "open_url", "dial", "share_location", "calendar_event", "view_location")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")

Path = tuple[str | int, ...]
Known = Callable[[str], bool]
"""Whether a string's final value is known: at validate time a template's is not."""


def rcs_problems(content: Mapping[str, Any], known: Known = lambda text: True) -> list[tuple[Path, str]]:
    """Every RBM limit `content` breaks, each with the path of its field (`card.title`,
    `suggestions[2].text`). Counts are always known; a string only when `known` says so."""
    check = _Check(known)
    check.text(content.get("text"), ("text",), TEXT_MAX, "an RCS text")
    if isinstance(content.get("card"), Mapping):
        check.card(content["card"], ("card",), in_carousel=False)
    carousel = content.get("carousel")
    if isinstance(carousel, Mapping):
        check.carousel(carousel)
    check.chips(content.get("suggestions"), ("suggestions",), SUGGESTIONS_MAX, "a message")
    return check.found


class _Check:
    def __init__(self, known: Known) -> None:
        self.known = known
        self.found: list[tuple[Path, str]] = []

    def text(self, value: Any, path: Path, limit: int, what: str) -> None:
        if isinstance(value, str) and self.known(value) and len(value) > limit:
            self.found.append((path, f"{what} holds at most {limit} characters (RBM), this one {len(value)}"))

    def card(self, card: Mapping[str, Any], path: Path, in_carousel: bool) -> None:
        self.text(card.get("title"), (*path, "title"), TITLE_MAX, "a card title")
        self.text(card.get("description"), (*path, "description"), DESCRIPTION_MAX, "a card description")
        self.text(card.get("media_url"), (*path, "media_url"), URL_MAX, "a media URL")
        media = card.get("media")
        if isinstance(media, Mapping):
            self.text(media.get("url"), (*path, "media", "url"), URL_MAX, "a media URL")
            self.text(media.get("thumbnail_url"), (*path, "media", "thumbnail_url"), URL_MAX, "a thumbnail URL")
            if in_carousel and media.get("height") == "tall":
                self.found.append(((*path, "media", "height"), "a carousel card's media is short or medium, not "
                                                               "tall (RBM: tall only on a standalone card)"))
        if in_carousel and card.get("orientation") == "horizontal":
            self.found.append(((*path, "orientation"), "carousel cards are vertical (RBM); orientation is for a "
                                                       "standalone card"))
        if not any(card.get(k) for k in ("title", "description", "media", "media_url")):
            self.found.append((path, "a card needs a title, a description or media"))
        self.chips(card.get("suggestions"), (*path, "suggestions"), CARD_SUGGESTIONS_MAX, "a card")

    def carousel(self, carousel: Mapping[str, Any]) -> None:
        cards = carousel.get("cards")
        if not isinstance(cards, Sequence) or isinstance(cards, str):
            return
        if not CAROUSEL_MIN <= len(cards) <= CAROUSEL_MAX:
            self.found.append((("carousel", "cards"), f"a carousel holds {CAROUSEL_MIN} to {CAROUSEL_MAX} cards "
                                                      f"(RBM), this one {len(cards)}"))
        for n, card in enumerate(cards):
            if isinstance(card, Mapping):
                self.card(card, ("carousel", "cards", n), in_carousel=True)

    def chips(self, chips: Any, path: Path, limit: int, under: str) -> None:
        if not isinstance(chips, Sequence) or isinstance(chips, str):
            return
        if len(chips) > limit:
            self.found.append((path, f"{under} carries at most {limit} suggestions (RBM), this one {len(chips)}"))
        for n, chip in enumerate(chips):
            if isinstance(chip, Mapping):
                self.chip(chip, (*path, n))

    def chip(self, chip: Mapping[str, Any], path: Path) -> None:
        label_key = "text" if chip.get("text") is not None else "reply" if chip.get("reply") is not None else None
        label = _label(chip)
        if label_key is not None or isinstance(label, str):
            where = (*path, label_key or next(k for k in ("open_url", "dial") if chip.get(k) is not None))
            if isinstance(label, str) and self.known(label) and len(label) > CHIP_TEXT_MAX:
                hint = "" if label_key else ": give the chip a shorter `text`"
                self.found.append((where, f"a chip's text holds at most {CHIP_TEXT_MAX} characters (RBM), "
                                          f"{label!r} has {len(label)}{hint}"))
        self.text(chip.get("postback"), (*path, "postback"), POSTBACK_MAX, "postback data")
        self.text(chip.get("open_url"), (*path, "open_url"), URL_MAX, "a URL")
        dial = chip.get("dial")
        if isinstance(dial, str) and self.known(dial) and not _E164.match(dial):
            self.found.append(((*path, "dial"), f"a dial chip's number is E.164 (+<country><number>), not {dial!r}"))
        event = chip.get("calendar_event")
        if isinstance(event, Mapping):
            self.calendar(event, (*path, "calendar_event"))

    def calendar(self, event: Mapping[str, Any], path: Path) -> None:
        times: dict[str, datetime] = {}
        for key in ("start", "end"):
            value = event.get(key)
            if isinstance(value, str) and self.known(value):
                try:
                    times[key] = _instant(value)
                except ValueError as exc:
                    self.found.append(((*path, key), str(exc)))
        if len(times) == 2 and times["end"] <= times["start"]:
            self.found.append(((*path, "end"), "a calendar event ends after it starts"))
        self.text(event.get("title"), (*path, "title"), CALENDAR_TITLE_MAX, "a calendar event title")
        self.text(event.get("description"), (*path, "description"), CALENDAR_DESCRIPTION_MAX,
                  "a calendar event description")


def _instant(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp (e.g. 2026-05-01T18:00:00Z)") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone offset (add 'Z' for UTC)")
    return parsed


def _label(chip: Mapping[str, Any]) -> Any:
    """What the chip shows: its `text`, else a reply's words, else the URL or number it opens."""
    for key in ("text", "reply", "open_url", "dial"):
        if chip.get(key) is not None:
            return chip[key]
    return None


# --- one reading of the content, for the providers ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Chip:
    """A suggestion: `kind` is one of CHIP_KINDS; `text` its label; `postback` what comes back
    when it is tapped (the author's, else the label). The other fields belong to one kind."""

    kind: str
    text: str
    postback: str
    url: str | None = None
    phone: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    query: str | None = None
    title: str | None = None
    description: str | None = None
    start: str | None = None
    end: str | None = None


@dataclass(frozen=True, slots=True)
class Media:
    url: str
    height: str = "medium"
    thumbnail_url: str | None = None


@dataclass(frozen=True, slots=True)
class Card:
    title: str | None
    description: str | None
    media: Media | None
    orientation: str
    suggestions: tuple[Chip, ...]


@dataclass(frozen=True, slots=True)
class RcsMessage:
    """A message's rendered `rcs` content: text, a standalone card or a carousel, and chips."""

    text: str | None
    card: Card | None
    carousel: tuple[Card, ...]
    width: str
    suggestions: tuple[Chip, ...]

    @property
    def rich(self) -> bool:
        """More than text: a card, a carousel or chips (a provider sends these as rich content)."""
        return self.card is not None or bool(self.carousel) or bool(self.suggestions)

    def chips(self) -> Iterator[Chip]:
        """Every chip: the message's, then each card's."""
        yield from self.suggestions
        for card in (self.card, *self.carousel):
            if card is not None:
                yield from card.suggestions


def rcs_message(content: Mapping[str, Any]) -> RcsMessage:
    """The rendered content as providers read it. The older spellings mean the same: a card's
    `media_url` is medium-height media, `{reply: Yes}` posts back "Yes"."""
    carousel = content.get("carousel") or {}
    return RcsMessage(
        text=_text(content.get("text")),
        card=_card(content["card"]) if content.get("card") else None,
        carousel=tuple(_card(c) for c in carousel.get("cards") or ()),
        width=str(carousel.get("width") or "medium"),
        suggestions=tuple(_chip(s) for s in content.get("suggestions") or ()),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _card(card: Mapping[str, Any]) -> Card:
    media = card.get("media")
    if isinstance(media, Mapping) and media.get("url"):
        found: Media | None = Media(str(media["url"]), str(media.get("height") or "medium"),
                                    _text(media.get("thumbnail_url")))
    else:
        found = Media(str(card["media_url"])) if card.get("media_url") else None
    return Card(_text(card.get("title")), _text(card.get("description")), found,
                str(card.get("orientation") or "vertical"), tuple(_chip(s) for s in card.get("suggestions") or ()))


def _chip(chip: Mapping[str, Any]) -> Chip:
    kind = next((k for k in CHIP_KINDS if chip.get(k) not in (None, False)), "reply")
    text = str(_label(chip) or kind)
    postback = str(chip["postback"]) if chip.get("postback") is not None else text
    if kind == "calendar_event":
        event = chip["calendar_event"]
        return Chip(kind, text, postback, title=_text(event.get("title")), description=_text(event.get("description")),
                    start=_text(event.get("start")), end=_text(event.get("end")))
    if kind == "view_location":
        place = chip["view_location"]
        return Chip(kind, text, postback, latitude=_number(place.get("latitude")),
                    longitude=_number(place.get("longitude")), query=_text(place.get("query")),
                    title=_text(place.get("label")))
    return Chip(kind, text, postback, url=_text(chip.get("open_url")), phone=_text(chip.get("dial")))


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
