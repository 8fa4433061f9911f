"""The tasks of the hello example: plain functions, made background jobs by ``@app.task``."""

from __future__ import annotations

from litequeue import LiteQueue

# The database is $LITEQUEUE_DB, else ./litequeue.db: one file, no server.
app = LiteQueue("hello")


@app.task()
def add(a: int, b: int) -> int:
    return a + b


@app.task(retries=2, retry_delay=0)
def shout(word: str) -> str:
    return word.upper() + "!"
