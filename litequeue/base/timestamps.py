"""Huey's timestamps as the epoch seconds the tables keep: one conversion for the app and its storage."""

from __future__ import annotations

import datetime as dt
from typing import overload


@overload
def to_epoch(value: None, utc: bool = True) -> None: ...
@overload
def to_epoch(value: dt.datetime | float, utc: bool = True) -> float: ...


def to_epoch(value: dt.datetime | float | None, utc: bool = True) -> float | None:
    """Huey keeps naive datetimes, UTC (``utc=True``, the default) or local time; the
    tables keep epoch seconds. Numbers are epoch seconds already."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if value.tzinfo is None and utc:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()  # a naive datetime here is local time
