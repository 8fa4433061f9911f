"""The inbox example's tasks: each is called with the path of one file from the inbox."""

from __future__ import annotations

import csv

from litequeue import LiteQueue

app = LiteQueue("inbox-example")  # database: $LITEQUEUE_DB, else ./litequeue.db


@app.task()
def count_words(path: str) -> int:
    """A text file: count its words."""
    with open(path, encoding="utf-8") as fh:
        return len(fh.read().split())


@app.task()
def import_orders(path: str) -> float:
    """A CSV of orders: add up the totals (a total that is not a number fails the job)."""
    total = 0.0
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            total += float(row["total"])
    return round(total, 2)
