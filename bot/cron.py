"""Cron expressions (5 fields or an @daily-style macro, optional timezone), matched by Huey's own crontab.

Month and weekday names (JAN, mon-fri; any case) are read as their numbers, as in Vixie cron.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from huey import crontab

Matcher = Callable[[dt.datetime], bool]
MINUTE = dt.timedelta(minutes=1)
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # Huey counts from 0 = Sunday, as cron does
WORD = re.compile(r"[A-Za-z]+")


def parse(expr: str) -> Matcher:
    """A matcher for 'minute hour day month day_of_week' or a macro; ValueError says what is wrong."""
    words = expr.split()
    if len(words) == 1 and words[0].startswith("@"):
        if words[0].lower() not in MACROS:
            raise ValueError(f"unknown cron macro {words[0][:20]!r}; known: {', '.join(MACROS)}")
        words = MACROS[words[0].lower()].split()
    if len(words) != 5:
        raise ValueError(f"cron needs 5 fields (minute hour day month weekday) or a macro such as @daily, got {len(words)}")
    minute, hour, day, month, weekday = words
    return crontab(minute, hour, day, _numbers(month, MONTHS, 1), _numbers(weekday, WEEKDAYS, 0), strict=True)


def _numbers(field: str, names: tuple[str, ...], first: int) -> str:
    """The field with each name (JAN, Mon) replaced by its number."""

    def number(word: re.Match) -> str:
        name = word.group().lower()
        if name not in names:
            raise ValueError(f"{word.group()[:20]!r} is not one of {', '.join(n.upper() for n in names)}")
        return str(names.index(name) + first)

    return WORD.sub(number, field)


def zone(name: str | None) -> dt.tzinfo:
    if not name:
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}") from None


def due(matcher: Matcher, tz: dt.tzinfo, after: float, until: float) -> list[float]:
    """Minute marks (epoch seconds) in (after, until] at which the expression fires."""
    start = dt.datetime.fromtimestamp(after, dt.UTC).replace(second=0, microsecond=0) + MINUTE
    end = dt.datetime.fromtimestamp(until, dt.UTC)
    fires = []
    moment = start
    while moment <= end:
        if matcher(moment.astimezone(tz).replace(tzinfo=None)):
            fires.append(moment.timestamp())
        moment += MINUTE
    return fires


def next_fire(matcher: Matcher, tz: dt.tzinfo, after: float, horizon_days: int = 366) -> float | None:
    moment = dt.datetime.fromtimestamp(after, dt.UTC).replace(second=0, microsecond=0) + MINUTE
    for _ in range(horizon_days * 24 * 60):
        if matcher(moment.astimezone(tz).replace(tzinfo=None)):
            return moment.timestamp()
        moment += MINUTE
    return None
