"""Fire the periodic tasks due at a given minute (UTC), as a consumer would at that minute.

    python fire.py 2026-01-05T09:00      # a Monday: heartbeat, quarter_hourly_check, morning_report
    python fire.py 2026-01-05T09:01      # heartbeat only

Each (task, minute) fires once, ever: running it twice enqueues nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import sys

from tasks import app

minute = dt.datetime.fromisoformat(sys.argv[1]) if len(sys.argv) > 1 else dt.datetime.now(dt.UTC)
minute = minute.replace(tzinfo=None, second=0, microsecond=0)  # naive UTC, as Huey keeps it
fired = app.fire_periodic(minute)
names = ", ".join(name.rsplit(".", 1)[-1] for name in fired) or "nothing (already fired, or not due)"
print(f"{minute:%Y-%m-%d %H:%M} ({minute:%A}): fired {names}")
