"""Huey on Redis (``RedisHuey``, blocking pop): ``huey_consumer hueyredis_tasks.huey -w 8``."""

from __future__ import annotations

import os

from huey import RedisHuey
from marks import mark

huey = RedisHuey("bench", url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:1/0"))


@huey.task()
def noop() -> None:
    mark()


def enqueue_one() -> None:
    noop()
