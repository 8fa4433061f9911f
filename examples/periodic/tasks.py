"""Periodic tasks: Huey's ``crontab``, fired once per (task, minute) however many consumers run."""

from __future__ import annotations

import datetime as dt

from litequeue import LiteQueue, crontab

app = LiteQueue("periodic")


@app.periodic_task(crontab())  # every minute
def heartbeat() -> str:
    return f"alive at {dt.datetime.now(dt.UTC):%H:%M:%S}"


@app.periodic_task(crontab(minute="*/15"), queue="reports")
def quarter_hourly_check() -> str:
    return "checked"


@app.periodic_task(crontab(day_of_week="1-5", hour="9", minute="0"), queue="reports")
def morning_report() -> str:
    """Weekdays at 09:00 UTC (Huey's crontab: day_of_week 0 = Sunday)."""
    return "report sent"
