"""SMS encoding and segment count (GSM 03.38 / UCS-2).

Providers bill per segment, so the count must match theirs exactly: an escape
pair (GSM-7 extension char) or a surrogate pair (UCS-2 astral char) is never
split across segments, which can make the count exceed ceil(units / 153).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from channels.values import quick_init

GSM7 = "GSM-7"
UCS2 = "UCS-2"

_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_EXTENSION = frozenset("\f^{}\\[~]|€")
_GSM = _BASIC | _EXTENSION
# ASCII chars that are not in GSM-7 at all: their presence forces UCS-2.
_ASCII_NOT_GSM = frozenset(chr(c) for c in range(128)) - _GSM

_GSM_SINGLE, _GSM_MULTI = 160, 153
_UCS_SINGLE, _UCS_MULTI = 70, 67


@quick_init
@dataclass(frozen=True, slots=True)
class SmsEncoding:
    """How a text travels as SMS: `units` are septets (GSM-7) or UTF-16 units (UCS-2)."""

    encoding: str
    units: int
    segments: int


def sms_encoding(text: str) -> SmsEncoding:
    """Encoding, length and segment count of `text` as providers bill it."""
    return _sms_encoding(text)


@lru_cache(maxsize=4096)
def _sms_encoding(text: str) -> SmsEncoding:
    if text.isascii():
        chars = set(text)
        if not chars & _ASCII_NOT_GSM:
            return _gsm(text, chars)
        return _ucs2(text)
    if _GSM.issuperset(text):
        return _gsm(text, set(text))
    return _ucs2(text)


def _gsm(text: str, chars: set[str]) -> SmsEncoding:
    if not chars & _EXTENSION:
        # Every char is one septet: no pair can straddle a boundary.
        return SmsEncoding(GSM7, len(text), _plain_segments(len(text), _GSM_SINGLE, _GSM_MULTI))
    widths = [2 if c in _EXTENSION else 1 for c in text]
    return SmsEncoding(GSM7, sum(widths), _segments(widths, _GSM_SINGLE, _GSM_MULTI))


def _ucs2(text: str) -> SmsEncoding:
    widths = [2 if ord(c) > 0xFFFF else 1 for c in text]
    units = sum(widths)
    if units == len(text):
        return SmsEncoding(UCS2, units, _plain_segments(units, _UCS_SINGLE, _UCS_MULTI))
    return SmsEncoding(UCS2, units, _segments(widths, _UCS_SINGLE, _UCS_MULTI))


def _plain_segments(units: int, single: int, multi: int) -> int:
    if units <= single:
        return 1
    return -(-units // multi)


def _segments(widths: list[int], single: int, multi: int) -> int:
    """Fill segments greedily, moving a two-unit char whole to the next segment."""
    if sum(widths) <= single:
        return 1
    count, used = 1, 0
    for width in widths:
        if used + width > multi:
            count, used = count + 1, 0
        used += width
    return count
