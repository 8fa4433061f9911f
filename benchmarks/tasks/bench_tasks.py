"""litequeue: ``litequeue run-consumer bench_tasks -w 8`` (database: ``$LITEQUEUE_DB``,
durability: ``$LITEQUEUE_DURABILITY``)."""

from __future__ import annotations

from marks import mark

from litequeue import LiteQueue

app = LiteQueue("bench")


@app.task()
def noop() -> None:
    mark()


def enqueue_one() -> None:
    noop()


def enqueue_bulk(n: int) -> None:
    noop.map([()] * n)
