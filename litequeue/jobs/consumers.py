"""The consumer registry (a consumer registers, heartbeats, stops, is marked dead), queue
pauses, and the schedules kept in the database.

Part of the job-state writer (:mod:`litequeue.jobs`): the only code that writes
``lq_consumer``, ``lq_queue_state`` and ``lq_periodic_schedule``; it runs inside the
caller's write transaction.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from litequeue.store.dialect import marks

if TYPE_CHECKING:
    from litequeue.engine.storage import LiteStorage


def register_consumer(store: LiteStorage, row: dict[str, Any]) -> None:
    """A consumer starts: its registry row (who, where, how to tell it is alive)."""
    cols = list(row)
    store.sql(f"INSERT INTO lq_consumer ({', '.join(cols)}) VALUES ({marks(len(cols))})",
              [row[c] for c in cols])


def heartbeat(store: LiteStorage, consumer_id: str, jobs_done: int) -> bool:
    """Renew the consumer's lease; False when it was presumed dead meanwhile (its row is no
    longer ``running``/``stopping``: its claims were, or are being, given to others)."""
    return store.sql("UPDATE lq_consumer SET heartbeat_at = ?, jobs_done = ? WHERE id = ? "
                     "AND status IN ('running', 'stopping')", (time.time(), jobs_done, consumer_id)).rowcount > 0


def mark_stopping(store: LiteStorage, consumer_id: str) -> None:
    """A consumer begins its graceful stop."""
    store.sql("UPDATE lq_consumer SET status = 'stopping' WHERE id = ? AND status = 'running'", (consumer_id,))


def deregister_consumer(store: LiteStorage, consumer_id: str, jobs_done: int) -> None:
    """A consumer stopped: its row stays as history (pruned later)."""
    now = time.time()
    store.sql("UPDATE lq_consumer SET status = 'stopped', stopped_at = ?, heartbeat_at = ?, "
              "jobs_done = ? WHERE id = ?", (now, now, jobs_done, consumer_id))


def mark_dead(store: LiteStorage, consumer_id: str) -> None:
    """A consumer presumed dead (its lease ran out) is marked so, once its claims were recovered."""
    store.sql("UPDATE lq_consumer SET status = 'dead', stopped_at = COALESCE(stopped_at, ?) "
              "WHERE id = ? AND status != 'stopped'", (time.time(), consumer_id))


#: What a consumer can be asked to do from outside (read with its heartbeat).
REQUESTS = ("quiet", "stop")


def request(store: LiteStorage, consumer_id: str, what: str) -> bool:
    """Ask a live consumer to go ``quiet`` (take no new jobs, finish the running ones) or to
    ``stop`` (a graceful stop, as on SIGTERM); a stop overrides a quiet, never the other way.
    False when no live consumer has that id or it was asked that already."""
    if what not in REQUESTS:
        raise ValueError(f"a consumer can be asked to {' or '.join(REQUESTS)}, not {what!r}")
    keep = "" if what == "stop" else " AND (requested IS NULL)"
    return store.sql("UPDATE lq_consumer SET requested = ? WHERE id = ? AND status IN ('running', 'stopping') "
                     f"AND (requested IS NULL OR requested != ?){keep}",
                     (what, consumer_id, what)).rowcount > 0


def obeyed(store: LiteStorage, consumer_id: str, what: str) -> None:
    """The consumer did what it was asked (the page shows it as done, not just asked)."""
    store.sql("UPDATE lq_consumer SET obeyed = ? WHERE id = ?", (what, consumer_id))


def pause_queue(store: LiteStorage, queue: str, until: float | None) -> None:
    """Consumers take no new jobs of ``queue`` (until ``until``, if given)."""
    store.sql("INSERT INTO lq_queue_state (queue, paused, paused_until, updated_at) "
              "VALUES (?, ?, ?, ?) ON CONFLICT (queue) DO UPDATE SET paused = excluded.paused, "
              "paused_until = excluded.paused_until, updated_at = excluded.updated_at",
              (queue, True, until, time.time()))


def resume_queue(store: LiteStorage, queue: str) -> None:
    """A paused queue's jobs are taken again."""
    store.sql("UPDATE lq_queue_state SET paused = ?, paused_until = NULL, updated_at = ? WHERE queue = ?",
              (False, time.time(), queue))


# -- schedules kept in the database ------------------------------------------------------------

def add_schedule(store: LiteStorage, row: dict[str, Any], now: float) -> bool:
    """Store a new schedule (``row``: name, app, task, cron, timezone, args, kwargs, queue,
    priority); False, writing nothing, if one of that name exists."""
    cols = [*row, "enabled", "created_at", "updated_at"]
    done = store.sql(f"INSERT INTO lq_periodic_schedule ({', '.join(cols)}) VALUES ({marks(len(cols))}) "
                     "ON CONFLICT (name) DO NOTHING RETURNING name",
                     [*row.values(), 1, now, now]).fetchone()
    return done is not None


def set_schedule_enabled(store: LiteStorage, name: str, enabled: bool, now: float) -> bool:
    """Pause (``enabled=False``) or resume a schedule; False if it does not exist or already
    was in that state."""
    done = store.sql("UPDATE lq_periodic_schedule SET enabled = ?, updated_at = ? "
                     "WHERE name = ? AND enabled = ? RETURNING name",
                     (int(enabled), now, name, int(not enabled))).fetchone()
    return done is not None


def remove_schedule(store: LiteStorage, name: str) -> bool:
    """Delete a schedule (its past runs stay in ``lq_periodic_run``); False if none had that name."""
    return store.sql("DELETE FROM lq_periodic_schedule WHERE name = ? RETURNING name", (name,)).fetchone() is not None
