"""Tracked links: the links of a rendered message rewritten to short ones the server answers.

With the policy's `links.base_url` set, every http(s) link in the text of an email, SMS, MMS or
RCS message becomes `<base_url>/l/<code>`, and an email's HTML may carry an open pixel
`<base_url>/o/<code>`. The rewriting happens when the message is rendered, before the channel's
limits are checked and the channel is chosen, so an SMS is counted (segments, cost, `too_long`)
and an RCS message held to RBM's limits at its shortened length. RCS content is read as
`channels.rcs` reads it: an open-URL chip's tap is tracked, never what a chip shows. Each code is
random (letters and digits, `secrets`), never derived from the message or the person, so knowing
one link tells nothing of another.

Pure apart from the code source it is handed: `new_code` for the server, `seeded_codes` for a
dry run (the same codes on every run, of the same length, so the segments come out the same).
"""

from __future__ import annotations

import html
import random
import re
import secrets
import string
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from channels.policy import LinksPolicy

CodeSource = Callable[[int], str]
ALPHABET = string.ascii_letters + string.digits
"""Letters and digits only: a phone's link detector never ends a link early on them (`-` or `_`
at the end of a link is often left out of it), and every one is one GSM-7 septet."""
LINK_PATH = "/l/"
PIXEL_PATH = "/o/"

_URL = re.compile(r"https?://[^\s<>\"'`{}|\\^\x00-\x20\x7f]+", re.IGNORECASE)
_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE | re.DOTALL)
_CLOSERS = {")": "(", "]": "["}
_TRAILING = ".,;:!?*'\""
_TEXT_KEYS = frozenset({"text", "body", "description"})  # the text a person reads; never a title or subject
_NEVER = frozenset({"media_url", "media"})  # what the phone fetches by itself is no click
_CHIPS = "suggestions"  # RCS chips, the message's and each card's (channels/rcs.py)


def new_code(length: int) -> str:
    """A random code (`secrets`): `length` letters and digits, 5.95 bits each."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def seeded_codes(seed: int = 0) -> CodeSource:
    """The same codes on every run: a dry run shows links as long as the server's, never real ones."""
    pick = random.Random(seed).choice
    return lambda length: "".join(pick(ALPHABET) for _ in range(length))


@dataclass(frozen=True, slots=True)
class TrackedLink:
    """One short link of a message: its code, and the URL it leads to (None: the open pixel)."""

    code: str
    url: str | None


@dataclass(frozen=True, slots=True)
class Tracked:
    """Rendered contents with their links rewritten, and every short link made, by short URL."""

    contents: dict[str, Any]
    links: dict[str, TrackedLink]

    def links_in(self, content: Mapping[str, Any]) -> tuple[TrackedLink, ...]:
        """The short links a delivered content holds (an SMS falling back from RCS holds the RCS's)."""
        if not self.links:
            return ()
        text = "\n".join(strings_of(content))
        return tuple(link for short, link in self.links.items() if short in text)


class Tracker:
    """Rewrites the links of rendered contents, by the policy's `links` settings."""

    def __init__(self, settings: LinksPolicy, codes: CodeSource = new_code) -> None:
        assert settings.base_url is not None, "no base_url: nothing is tracked"
        self.base = settings.base_url
        self.length = settings.code_length
        self.pixel = settings.open_pixel
        self.channels = frozenset(settings.channels)
        self.codes = codes

    def track(self, contents: Mapping[str, Any]) -> Tracked:
        """Each tracked channel's content with its links short; the others as they came."""
        links: dict[str, TrackedLink] = {}
        rewritten = {channel: self.rewrite(channel, content, links) for channel, content in contents.items()}
        return Tracked(rewritten, links)

    def rewrite(self, channel: str, content: Any, links: dict[str, TrackedLink]) -> Any:
        """One channel's rendered content with its links short (as it came when the channel is not
        tracked), each short link made added to the message's `links`. The renderer calls it before
        it checks the channel's limits, so an RCS text or card is measured as it is sent."""
        if channel not in self.channels:
            return content
        made: dict[str, str] = {}  # URL -> its short link in this content: one code per link of a message
        shortened = _walk(content, None, lambda url: self._short(url, made, links))
        if self.pixel and channel == "email" and isinstance(shortened, dict) and shortened.get("html"):
            shortened["html"] = _with_pixel(shortened["html"], self._new(PIXEL_PATH, None, links))
        return shortened

    def _short(self, url: str, made: dict[str, str], links: dict[str, TrackedLink]) -> str:
        if url.startswith(self.base + "/"):
            return url  # one of ours already (a template that links to the tracker itself)
        if url not in made:
            made[url] = self._new(LINK_PATH, url, links)
        return made[url]

    def _new(self, path: str, url: str | None, links: dict[str, TrackedLink]) -> str:
        code = self.codes(self.length)
        short = f"{self.base}{path}{code}"
        links[short] = TrackedLink(code, url)
        return short


def _walk(value: Any, key: str | None, short: Callable[[str], str]) -> Any:
    """A copy of a content tree with the links of its text fields (by key) rewritten: an email's
    `body` and `html`, a message's `text`, an RCS card's `description`, RCS chips as `_chip` says."""
    if key in _NEVER:
        return value
    if key == _CHIPS and isinstance(value, list):
        return [_chip(chip, short) if isinstance(chip, Mapping) else chip for chip in value]
    if isinstance(value, Mapping):
        return {k: _walk(v, k, short) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(item, key, short) for item in value]
    if not isinstance(value, str):
        return value
    if key == "html":
        return _HREF.sub(lambda m: _href(m, short), value)
    if key in _TEXT_KEYS:
        return _URL.sub(lambda m: _in_text(m[0], short), value)
    return value


def _chip(chip: Mapping[str, Any], short: Callable[[str], str]) -> dict[str, Any]:
    """An RCS chip: only an open-URL chip's link is rewritten, its action. What the chip shows stays
    as the author wrote it (a chip with no `text` showed its URL: that URL becomes its `text`), and
    a reply's words, a postback, a number to dial, a calendar event or a place are no link to track."""
    copy = dict(chip)
    url = chip.get("open_url")
    if isinstance(url, str) and _URL.fullmatch(url):
        copy["open_url"] = short(url)
        if chip.get("text") is None and chip.get("reply") is None:
            copy["text"] = url
    return copy


def _in_text(found: str, short: Callable[[str], str]) -> str:
    """A link found in text, less the punctuation that ends its sentence, shortened."""
    url = found
    while url and (url[-1] in _TRAILING or (url[-1] in _CLOSERS and url.count(url[-1]) > url.count(_CLOSERS[url[-1]]))):
        url = url[:-1]
    if "://" not in url or url.endswith("://"):
        return found
    return short(url) + found[len(url):]


def _href(match: re.Match[str], short: Callable[[str], str]) -> str:
    quote = '"' if match[2] is not None else "'"
    written = match[2] if match[2] is not None else match[3]
    url = html.unescape(written).strip()
    if not _URL.fullmatch(url):
        return match[0]  # mailto:, tel:, #anchor, a template's own placeholder: left alone
    return f"{match[1]}{quote}{html.escape(short(url), quote=True)}{quote}"


def _with_pixel(body: str, short: str) -> str:
    """The pixel at the end of the HTML's body (before `</body>` when it has one)."""
    tag = (f'<img src="{html.escape(short, quote=True)}" width="1" height="1" alt="" '
           'style="border:0;width:1px;height:1px">')
    at = body.lower().rfind("</body>")
    return f"{body[:at]}{tag}{body[at:]}" if at >= 0 else body + tag


def strings_of(value: Any) -> Iterator[str]:
    """Every string in a JSON-like value, at any depth (a journey forecast reads its definition's too)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from strings_of(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings_of(item)
