"""Time as the tables keep it: epoch seconds, from the naive datetimes Huey hands around."""

from __future__ import annotations

import datetime as dt
from typing import overload


@overload
def to_epoch(value: None, utc: bool = True) -> None: ...


@overload
def to_epoch(value: dt.datetime | float, utc: bool = True) -> float: ...


def to_epoch(value: dt.datetime | float | None, utc: bool = True) -> float | None:
    """Epoch seconds of ``value``: a number is taken as epoch seconds already, a naive
    datetime is UTC (``utc=True``, the default, as Huey's) or local time; None stays None."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if value.tzinfo is None and utc:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()  # a naive datetime here is local time
