"""procrastinate, with its defaults: ``procrastinate --app=procrastinate_tasks.app worker
--concurrency 8`` (database: ``$BENCH_PG_URL``; schema applied by ``schema --apply``)."""

from __future__ import annotations

import os

import procrastinate
from marks import mark

app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=os.environ.get("BENCH_PG_URL", "")))
_opened = False


@app.task(name="noop")
def noop() -> None:
    mark()


def _open() -> None:
    global _opened
    if not _opened:
        app.open()
        _opened = True


def enqueue_one() -> None:
    _open()
    noop.defer()


def enqueue_bulk(n: int) -> None:
    _open()
    noop.batch_defer(*([{}] * n))
