"""arq on Redis: ``arq arq_tasks.WorkerSettings`` (8 concurrent jobs)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from marks import mark

REDIS = RedisSettings.from_dsn(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:1/0"))


async def noop(ctx: dict[str, Any]) -> None:
    mark()


class WorkerSettings:
    functions = [noop]
    redis_settings = REDIS
    max_jobs = 8
    keep_result = 0


_loop: asyncio.AbstractEventLoop | None = None
_pool: ArqRedis | None = None


def enqueue_one() -> None:
    global _loop, _pool
    if _loop is None:
        _loop = asyncio.new_event_loop()
        _pool = _loop.run_until_complete(create_pool(REDIS))
    assert _pool is not None
    _loop.run_until_complete(_pool.enqueue_job("noop"))
