"""Bare Huey on SQLite, with its defaults: ``huey_consumer huey_tasks.huey -w 8``."""

from __future__ import annotations

import os

from huey import SqliteHuey
from marks import mark

huey = SqliteHuey("bench", filename=os.environ.get("BENCH_HUEY_DB", "huey.db"))


@huey.task()
def noop() -> None:
    mark()


def enqueue_one() -> None:
    noop()
