"""Timestamps as every document of the project writes and reads them: RFC 3339 with an offset in,
aware UTC inside, `...Z` out, from 1970 up to 2100."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive: far enough for any schedule, short of overflows


def read_timestamp(value: object) -> datetime:
    """An RFC 3339 timestamp string with an offset (or an aware datetime), as aware UTC, from 1970
    up to 2100: the one range for events, consents and everything else stored with a time. Raises
    ValueError saying what is wrong (without the field's name, which the caller adds)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
        except ValueError:
            raise ValueError(f"{value!r} is not an RFC 3339 timestamp") from None
    else:
        raise ValueError(f"expected an RFC 3339 timestamp string, got {type(value).__name__}")
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone offset (add 'Z' for UTC)")
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:
        utc = EARLIEST - timedelta(days=1) if parsed.year < 2000 else LATEST
    if not EARLIEST <= utc < LATEST:
        raise ValueError(f"{value!s} is outside the supported range, {format_timestamp(EARLIEST)} to "
                         f"{format_timestamp(LATEST - timedelta(seconds=1))}")
    return utc


_last_formatted: tuple[datetime, str] | None = None


def format_timestamp(at: datetime) -> str:
    """RFC 3339 in UTC with a 'Z', the one timestamp shape in every output. A batch stamps
    most of what it writes with the same instant, so the last one formatted is kept."""
    global _last_formatted
    last = _last_formatted
    if last is not None and last[0] == at:  # equal instants print alike; naive never equals aware
        return last[1]
    text = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    _last_formatted = (at, text)
    return text
