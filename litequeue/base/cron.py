"""Cron expressions of schedules kept in the database: parsed by Huey's own ``crontab``
(the same matching as ``@periodic_task``), read in a schedule's time zone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from litequeue.base.errors import ConfigurationError

#: How far ahead a next run is looked for; a rarer schedule shows "not within 31 days".
HORIZON_MINUTES = 31 * 24 * 60
ALIASES = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
           "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *",
           "@annually": "0 0 1 1 *"}
EXAMPLE = '"*/5 * * * *" (minute hour day month weekday)'


class Cron:
    """A five-field cron expression read in ``timezone`` (an IANA name); made by :func:`parse`."""

    def __init__(self, expression: str, timezone: str, matches: Callable[[dt.datetime], bool],
                 zone: ZoneInfo) -> None:
        self.expression = expression
        self.timezone = timezone
        self._matches = matches
        self._zone = zone

    def matches(self, moment: dt.datetime) -> bool:
        """Does the minute ``moment`` (aware; any zone) fall on this schedule, on the wall
        clock of its time zone? A wall-clock minute that happens twice (the hour repeated
        when summer time ends) matches twice; one that never happens never matches."""
        return self._matches(moment.astimezone(self._zone).replace(tzinfo=None))

    def next_after(self, now: float, horizon: int = HORIZON_MINUTES) -> float | None:
        """The first minute after ``now`` (epoch seconds) on this schedule, as epoch seconds,
        or None within ``horizon`` minutes."""
        start = dt.datetime.fromtimestamp(now, dt.UTC).replace(second=0, microsecond=0)
        for step in range(1, horizon + 1):
            moment = start + dt.timedelta(minutes=step)
            if self.matches(moment):
                return moment.timestamp()
        return None


def parse(expression: str, timezone: str = "UTC") -> Cron:
    """A :class:`Cron`, or :class:`ConfigurationError` with a one-line reason for a bad
    expression or an unknown time zone."""
    text = " ".join(expression.split())
    fields = ALIASES.get(text.lower(), text).split(" ")
    if len(fields) != 5:
        raise ConfigurationError(f"bad cron expression {expression!r}: it needs 5 fields, e.g. {EXAMPLE}")
    try:
        from huey import crontab  # Huey on first use: the CLI's read commands never import it

        matches = crontab(*fields, strict=True)
    except (ValueError, IndexError) as exc:
        raise ConfigurationError(f"bad cron expression {expression!r}: {exc}; e.g. {EXAMPLE}") from None
    return Cron(text, timezone, matches, zone(timezone))


def zone(name: str) -> ZoneInfo:
    """The time zone called ``name``, or a one-line :class:`ConfigurationError`."""
    try:
        if not name or name != name.strip():
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigurationError(f"unknown timezone {name!r}; use an IANA name such as "
                                 "Europe/Berlin, America/New_York or UTC") from None


def _field(values: list[int], lo: int, hi: int) -> str:
    """One cron field from the values it accepts: ``*``, ``*/5``, ``1-5`` or ``0,30``."""
    if values == list(range(lo, hi + 1)):
        return "*"
    if len(values) > 2 and values[0] == lo:
        step = values[1] - values[0]
        if values == list(range(lo, hi + 1, step)):
            return f"*/{step}"
    pieces: list[str] = []
    start = prev = values[0]
    for v in [*values[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        pieces.append(str(start) if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ",".join(pieces)


def describe(settings: list[list[int]]) -> str:
    """The cron expression (``minute hour day month weekday``) of the accepted values Huey's
    ``crontab`` keeps (month, day, weekday, hour, minute, each sorted)."""
    month, day, weekday, hour, minute = settings
    return " ".join([_field(minute, 0, 59), _field(hour, 0, 23), _field(day, 1, 31), _field(month, 1, 12),
                     _field(sorted({v % 7 for v in weekday}), 0, 6)])
