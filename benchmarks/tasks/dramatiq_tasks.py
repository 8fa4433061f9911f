"""Dramatiq on Redis: ``dramatiq dramatiq_tasks -p 1 -t 8``."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from marks import mark

dramatiq.set_broker(RedisBroker(url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:1/0")))


@dramatiq.actor(max_retries=0)
def noop() -> None:
    mark()


def enqueue_one() -> None:
    noop.send()
