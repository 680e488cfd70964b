"""Cron expressions (5 fields, optional timezone), matched by Huey's own crontab."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from huey import crontab

Matcher = Callable[[dt.datetime], bool]
MINUTE = dt.timedelta(minutes=1)


def parse(expr: str) -> Matcher:
    """A matcher for 'minute hour day month day_of_week'; ValueError says what is wrong."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"cron needs 5 fields (minute hour day month weekday), got {len(fields)}")
    return crontab(*fields, strict=True)


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
