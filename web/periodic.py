"""Each periodic task's next run, found by asking the task's own schedule minute by minute."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from huey.api import PeriodicTask

from litequeue import schedules
from litequeue.engine import huey_compat
from litequeue.ledger.queries import iso

if TYPE_CHECKING:
    from litequeue.app import LiteQueue

#: How far ahead to look; a schedule that fires less often shows "not within 31 days".
HORIZON_MINUTES = 31 * 24 * 60


class NextRuns:
    """Next runs of an app's periodic tasks, cached until each one has passed."""

    def __init__(self, app: LiteQueue) -> None:
        self.app = app
        self._cache: dict[str, float | None] = {}
        self._checked_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def _tasks(self) -> list[tuple[str, type[PeriodicTask]]]:
        return sorted(schedules.code_schedules(self.app).items())

    def upcoming(self, now: float | None = None) -> list[dict[str, Any]]:
        """One dict per periodic task: qualified name, queue and next run (ISO UTC or None)."""
        now = time.time() if now is None else now
        out = []
        with self._lock:
            for name, cls in self._tasks():
                cached = self._cache.get(name, -1.0)
                # Recompute once the cached run has passed (or, for "none within the horizon",
                # after an hour), so a page load costs a dictionary lookup.
                stale = (cached is None and now - self._checked_at.get(name, 0.0) > 3600) or \
                    (cached is not None and cached <= now)
                if name not in self._cache or stale:
                    self._cache[name] = next_run(cls, now)
                    self._checked_at[name] = now
                out.append({"task": name, "name": cls.__name__, "queue": getattr(cls, "queue", None),
                            "cron": schedules.code_cron(cls),
                            "next_run": iso(self._cache[name])})
        return out


def task_queue(app: LiteQueue, task: str) -> str | None:
    """The queue a task of ``app`` runs on by default (bare or qualified name)."""
    classes = huey_compat.task_classes(app)
    cls = classes.get(task) or next((c for n, c in classes.items() if n.rsplit(".", 1)[-1] == task), None)
    return getattr(cls, "queue", None) if cls is not None else None


def next_run(cls: type[PeriodicTask], now: float) -> float | None:
    """The first minute after ``now`` that the task's ``validate_datetime`` accepts, as epoch
    seconds, or None within :data:`HORIZON_MINUTES`. Huey passes naive UTC datetimes."""
    return schedules.code_next_run(cls, now, HORIZON_MINUTES)
