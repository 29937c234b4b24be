"""MMS content: how many media a message may carry and how large they may be.

Twilio takes at most 5 MB for an MMS, message and every media file together (an RCS message
that falls back to MMS is refused above it too), and at most 10 media files; US carriers take
less on long codes (AT&T and T-Mobile 1 MB, Verizon 1.5 MB) and Twilio resizes images only, so
anything over 1 MB may not arrive whole. A size is known at validate time from a `data:` URL
(its bytes are in it) or from the author's `media_size` hint (the media's total, e.g. `480KB`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

MEDIA_MAX = 10
MESSAGE_MAX_BYTES = 5_000_000
CARRIER_BYTES = 1_000_000
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1000, "mb": 1_000_000}

Path = tuple[str | int, ...]


def media_urls(content: Mapping[str, Any]) -> list[str]:
    """`media_url` as a list: one URL or several."""
    found = content.get("media_url")
    if found is None:
        return []
    return [str(url) for url in found] if isinstance(found, list) else [str(found)]


def parse_size(value: object) -> int:
    """`480KB`, `1.5MB`, `2000000` or `2000000B` in bytes (1 KB = 1,000 bytes, as carriers count)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected a size such as 480KB, 1.5MB or a number of bytes, got {value!r}")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()])


def data_url_size(url: str) -> int | None:
    """The bytes a `data:` URL holds (None for any other URL, or a malformed one)."""
    if not url.startswith("data:") or "," not in url:
        return None
    head, _, payload = url.partition(",")
    try:
        return len(base64.b64decode(payload, validate=False)) if head.endswith(";base64") else \
            len(unquote_to_bytes(payload))
    except (binascii.Error, ValueError):
        return None


def mms_problems(content: Mapping[str, Any], known: Callable[[str], bool] = lambda text: True,
                 ) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    """(errors, warnings) of an MMS's media, each with the path of its field."""
    errors: list[tuple[Path, str]] = []
    urls = [u for u in media_urls(content) if known(u)]
    listed = content.get("media_url")
    if isinstance(listed, list) and len(listed) > MEDIA_MAX:
        errors.append((("media_url",), f"an MMS carries at most {MEDIA_MAX} media (Twilio), this one {len(listed)}"))
    size, where = _known_size(content, urls, known, errors)
    if size is None:
        return errors, []
    megabytes = f"{size / 1_000_000:.2f} MB"
    if size > MESSAGE_MAX_BYTES:
        errors.append((where, f"the media come to {megabytes}; Twilio takes at most 5 MB for an MMS"))
        return errors, []
    if size > CARRIER_BYTES:
        return errors, [(where, f"the media come to {megabytes}: AT&T and T-Mobile take 1 MB on long codes, so "
                                "it may be refused or resized (keep MMS media under 1 MB, 500 KB to be safe)")]
    return errors, []


def _known_size(content: Mapping[str, Any], urls: list[str], known: Callable[[str], bool],
                errors: list[tuple[Path, str]]) -> tuple[int | None, Path]:
    hint = content.get("media_size")
    if hint is not None and (not isinstance(hint, str) or known(hint)):
        try:
            return parse_size(hint), ("media_size",)
        except ValueError as exc:
            errors.append((("media_size",), str(exc)))
            return None, ()
    sizes = [data_url_size(url) for url in urls]
    if not sizes or any(s is None for s in sizes):
        return None, ()
    return sum(s for s in sizes if s is not None), ("media_url",)
