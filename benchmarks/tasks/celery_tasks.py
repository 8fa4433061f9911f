"""Celery on Redis, threads pool: ``celery -A celery_tasks worker -P threads -c 8``."""

from __future__ import annotations

import os

from celery import Celery
from marks import mark

url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:1/0")
app = Celery("bench", broker=url)
app.conf.task_ignore_result = True
app.conf.worker_hijack_root_logger = False


@app.task
def noop() -> None:
    mark()


def enqueue_one() -> None:
    noop.delay()
