"""Template helpers: relative times, durations, JSON previews and the activity chart's geometry.

Everything here returns plain text or numbers; Jinja escapes it (nothing is marked safe).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from litequeue.base import usage

CHART_W, CHART_H, CHART_PAD = 1000, 150, 18


def epoch(value: str | None) -> float | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value).timestamp()  # "...Z" is UTC (fast: no strptime)


def seconds(value: float | None) -> str:
    """A duration for people: ``850 ms``, ``12.5 s``, ``4 m 10 s``, ``3 h 5 m``, ``2 d 4 h``."""
    if value is None:
        return "–"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 10:
        return f"{value:.1f} s"
    s = int(value)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} m {s % 60} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} m"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def ago(value: str | None, now: float | None = None) -> str:
    """``12.0 s ago`` / ``in 4 m 0 s`` for an ISO time from the ledger."""
    ts = epoch(value)
    if ts is None:
        return "–"
    delta = (time.time() if now is None else now) - ts
    return f"{seconds(delta)} ago" if delta >= 0 else f"in {seconds(-delta)}"


def clock(value: str | None) -> str:
    """An ISO time as ``2026-11-23 18:35:20 UTC``."""
    return f"{value[:10]} {value[11:19]} UTC" if value else "–"


def n(value: Any) -> str:
    """A count for people: ``2,717`` (a whole float loses its ``.0``; None is ``–``)."""
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


PLURALS = {"process": "processes", "asyncio": "asyncio slots", "greenlet": "greenlets", "thread": "threads"}


def plural(count: Any, noun: str) -> str:
    """``1 job``, ``3 jobs``, ``2,717 jobs``; ``8 threads``, ``2 processes``."""
    many = PLURALS.get(noun, noun + "s")
    return f"{n(count)} {noun if count == 1 else many}"


def progress_text(p: dict[str, Any] | None, status: str | None = None) -> str:
    """``50/200 (25%)``, and ``about 2 m 24 s left`` only while the job runs."""
    if not p:
        return ""
    text = f"{n(p['done'])}/{n(p['total'])}" if p.get("total") else n(p["done"])
    if p.get("percent") is not None:
        text += f" ({p['percent']:.0f}%)"
    if p.get("eta_seconds") is not None and status in (None, "running"):
        text += f" · about {seconds(p['eta_seconds'])} left"
    return text


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def inline(value: Any, limit: int = 80) -> str:
    """A one-line JSON preview for tables, cut at ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def chart(activity: list[dict[str, Any]]) -> dict[str, Any]:
    """Bar geometry for jobs finished per minute (succeeded stacked on failed); the page's
    script draws the same geometry from ``/api/overview`` (static/live.js ``drawChart``)."""
    n = max(1, len(activity))
    top = max([a["succeeded"] + a["failed"] for a in activity] + [1])
    inner = CHART_H - CHART_PAD
    step = CHART_W / n
    bars = []
    for i, a in enumerate(activity):
        fail_h = inner * a["failed"] / top
        ok_h = inner * a["succeeded"] / top
        bars.append({"x": round(i * step + 0.5, 2), "w": round(max(1.0, step - 1.0), 2),
                     "ok_y": round(inner - ok_h - fail_h, 2), "ok_h": round(ok_h, 2),
                     "fail_y": round(inner - fail_h, 2), "fail_h": round(fail_h, 2),
                     "title": f"{clock(a['minute'])[11:16]}  {a['succeeded']} succeeded, {a['failed']} failed"})
    return {"w": CHART_W, "h": CHART_H, "base": inner, "top": top, "bars": bars,
            "total_ok": sum(a["succeeded"] for a in activity), "total_failed": sum(a["failed"] for a in activity)}


def size(value: float | None) -> str:
    """Bytes for people: ``212 MB``, ``1.9 GB``."""
    return "–" if value is None else usage.size(value)


FILTERS = {"n": n, "size": size, "plural": plural, "progress_text": progress_text,
           "ago": ago, "seconds": seconds, "clock": clock, "pretty": pretty, "inline": inline, "epoch": epoch}
