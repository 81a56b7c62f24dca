"""How the console shows values: money in 元 from integer 分, times in Asia/Shanghai."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
FEN_PER_YUAN = 100


def yuan(fen: int) -> str:
    """``12345`` → ``"123.45 元"``; integer arithmetic only (no float ever sees money)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}{whole:,}.{cents:02d} 元"


def local_time(value: datetime | str | None) -> str:
    """An instant as ``YYYY-MM-DD HH:MM`` in Asia/Shanghai (RFC 3339 text accepted)."""
    if value is None:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def local_day(value: date | datetime | str | None) -> str:
    """A date (or an instant's Shanghai date) as ``YYYY-MM-DD``."""
    if value is None:
        return ""
    if isinstance(value, str):
        if len(value) == len("2026-01-01"):
            return value
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(SHANGHAI)
        return value.date().isoformat()
    return value.isoformat()


MINUTE_S = 60
HOUR_S = 60 * MINUTE_S
DAY_S = 24 * HOUR_S


def age_parts(seconds: int) -> tuple[str, int]:
    """An age as its largest whole unit: ``("s"|"m"|"h"|"d", count)``."""
    for unit, size_s in (("d", DAY_S), ("h", HOUR_S), ("m", MINUTE_S)):
        if seconds >= size_s:
            return unit, seconds // size_s
    return "s", max(0, seconds)


def unix_time(seconds: int | None) -> str:
    """Unix seconds as ``YYYY-MM-DD HH:MM`` in Asia/Shanghai."""
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, SHANGHAI).strftime("%Y-%m-%d %H:%M")
