"""The Stats view (``/stats``) and its JSON twin (``/api/stats``): the numbers of
``litequeue stats`` for a window, and a chart of runs and p95 run time per hour."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import peewee as pw
from flask import Blueprint, jsonify, request

from litequeue.ledger import queries
from litequeue.ledger import stats as ledger_stats
from litequeue.ledger.stats import parse_since

from . import data
from .format import clock

CHART_W, CHART_H, CHART_PAD = 1000, 190, 34
#: The chart shows at most this many hours (the newest), whatever the window.
CHART_HOURS = 7 * 24


def parse_args(args: dict[str, str]) -> dict[str, Any]:
    """since, by, task and queue from the query string; BadRequest names a wrong one."""
    since = args.get("since") or "24h"
    try:
        window = parse_since(since, "since")
    except ValueError as exc:
        raise data.BadRequest(str(exc)) from None
    by = args.get("by") or "task"
    if by not in ledger_stats.GROUPINGS:
        raise data.BadRequest(f"by must be one of {', '.join(ledger_stats.GROUPINGS)}, not {by!r}")
    return {"since": since, "window_s": window, "by": by, "task": args.get("task") or None,
            "queue": args.get("queue") or None}


def stats_data(db: pw.Database, args: dict[str, str], now: float | None = None) -> dict[str, Any]:
    """What ``litequeue stats --json`` prints for these parameters, and ``hourly``: the same
    per hour over the window's newest hours (at most a week), for the chart."""
    p = parse_args(args)
    now = time.time() if now is None else now
    since = now - p["window_s"]
    chart_since = max(since, (int(now // ledger_stats.HOUR) - CHART_HOURS + 1) * ledger_stats.HOUR)
    by = (p["by"],) if p["by"] == "hour" else (p["by"], "hour")
    if chart_since > since and p["by"] != "hour":
        # A window longer than the chart: the hourly rows come from their own, shorter pass.
        out = ledger_stats.report(db, since=since, until=now, by=(p["by"],), task=p["task"], queue=p["queue"])
        hourly = ledger_stats.report(db, since=chart_since, until=now, by=("hour",), task=p["task"],
                                     queue=p["queue"])["groups"]["hour"]
    else:
        out = ledger_stats.report(db, since=since, until=now, by=by, task=p["task"], queue=p["queue"])
        hourly = out["groups"]["hour"][-CHART_HOURS:]
    return {**out, "window": p["since"], "by": p["by"], "groups": out["groups"][p["by"]], "hourly": hourly}


def chart(hourly: list[dict[str, Any]]) -> dict[str, Any]:
    """Geometry of the hourly chart: a bar per hour for runs (failed jobs in red on top of
    the bar's foot) and a line for the p95 run time, each on its own scale."""
    n = max(1, len(hourly))
    inner = CHART_H - CHART_PAD
    room = inner - 16  # the scale labels sit above the tallest bar
    step = CHART_W / n
    top_runs = max([h["runs"] for h in hourly] + [1])
    p95s = [h["run_s"]["p95"] for h in hourly]
    top_p95 = max([v for v in p95s if v is not None] + [0.0]) or 1.0
    bars: list[dict[str, Any]] = []
    points: list[tuple[float, float]] = []
    for i, h in enumerate(hourly):
        run_h = room * h["runs"] / top_runs
        fail_h = min(run_h, room * h["failed"] / top_runs)
        x = i * step
        label = clock(h["hour"])[:16]
        p95 = h["run_s"]["p95"]
        title = (f"{label}: {h['runs']} runs, {h['succeeded']} succeeded, {h['failed']} failed, "
                 f"p95 run time {'–' if p95 is None else f'{p95:.3f} s'}")
        bars.append({"x": round(x + 0.5, 2), "w": round(max(1.0, step - 1.0), 2), "y": round(inner - run_h, 2),
                     "h": round(run_h, 2), "fail_y": round(inner - fail_h, 2), "fail_h": round(fail_h, 2),
                     "title": title})
        if p95 is not None:
            points.append((round(x + step / 2, 2), round(inner - room * p95 / top_p95, 2)))
    return {"w": CHART_W, "h": CHART_H, "base": inner, "bars": bars,
            "line": " ".join(f"{px},{py}" for px, py in points), "dots": points,
            "top_runs": top_runs, "top_p95": round(top_p95, 3),
            "first": clock(hourly[0]["hour"])[:16] if hourly else "", "hours": len(hourly),
            "middle": clock(hourly[len(hourly) // 2]["hour"])[:16] if len(hourly) > 2 else "",
            "last": clock(hourly[-1]["hour"])[:16] if hourly else ""}


def register(app: Blueprint, dbs: data.Databases, render: Callable[..., str]) -> None:
    @app.get("/stats")
    def stats() -> Any:
        db = dbs.reader()
        out = stats_data(db, request.args.to_dict())
        return render("stats.html", data=out, plot=chart(out["hourly"]), facets=queries.job_facets(db),
                               groupings=ledger_stats.GROUPINGS,
                               sample_limit=ledger_stats.SAMPLE_LIMIT, page="stats")

    @app.get("/api/stats")
    def api_stats() -> Any:
        return jsonify(stats_data(dbs.reader(), request.args.to_dict()))
