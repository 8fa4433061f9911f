"""RQ: ``rq worker-pool -n 8 -w rq.worker.SimpleWorker`` (no fork per job)."""

from __future__ import annotations

import os

from marks import mark
from redis import Redis
from rq import Queue

_queue: Queue | None = None


def noop() -> None:
    mark()


def enqueue_one() -> None:
    global _queue
    if _queue is None:
        _queue = Queue("default", connection=Redis.from_url(os.environ["BENCH_REDIS_URL"]))
    _queue.enqueue(noop)
