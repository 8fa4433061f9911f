"""Durations as people write them (``30s``, ``10m``, ``1h30m``, ``7d``): parsed to seconds and
written back.

Used wherever a setting or an option takes a duration: ``prune --older-than``, ``pause
--for``, ``Breaker(window="1m")``, ``[queues.x] timeout = "10m"``, ``stats --since``.
"""

from __future__ import annotations

import re

DAY = 86400.0
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY, "w": 7 * DAY}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> float:
    """Seconds in ``30s``, ``10m``, ``2h``, ``1d``, ``2w`` or a sum like ``1h30m``.

    Raises ``ValueError`` with a message that shows the expected form."""
    value = text.strip().lower().replace(" ", "")
    if not value or _PART.sub("", value):
        raise ValueError(f"{text!r} is not a duration; use a number and a unit, e.g. 30s, 10m, 2h, 7d, 1h30m")
    return sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(value))


def format_duration(seconds: float) -> str:
    """``90`` -> ``1m30s``; the inverse of :func:`parse_duration` for whole seconds."""
    left = int(round(seconds))
    if left == 0:
        return "0s"
    out = []
    for unit in ("d", "h", "m", "s"):
        n, left = divmod(left, int(_UNITS[unit]))
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)
