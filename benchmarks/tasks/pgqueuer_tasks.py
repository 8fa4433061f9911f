"""pgqueuer, with its defaults: ``python pgqueuer_tasks.py`` runs what ``pgq run
pgqueuer_tasks:main`` runs (its supervisor, its defaults, on uvloop), because ``pgq run``
fails before starting with the typer installed here (``'str' object has no attribute
'name'`` in its log-level option). asyncpg; database: ``$BENCH_PG_URL``; schema installed
by ``pgq install``. Its entrypoints are coroutines
(a blocking function would stall its event loop); the task body is the same one write."""

from __future__ import annotations

import contextlib
import os

from marks import mark

URL = os.environ.get("BENCH_PG_URL", "")
_queries = None


@contextlib.asynccontextmanager
async def main():  # noqa: ANN201 - the factory ``pgq run`` calls
    import asyncpg
    from pgqueuer import PgQueuer
    from pgqueuer.db import AsyncpgDriver

    conn = await asyncpg.connect(URL)
    pgq = PgQueuer(AsyncpgDriver(conn))

    @pgq.entrypoint("noop")
    async def noop(job: object) -> None:
        mark()

    try:
        yield pgq
    finally:
        await conn.close()


def _sync():  # noqa: ANN202
    global _queries
    if _queries is None:
        import psycopg
        from pgqueuer.db import SyncPsycopgDriver
        from pgqueuer.queries import SyncQueries

        _queries = SyncQueries(SyncPsycopgDriver(psycopg.connect(URL, autocommit=True)))
    return _queries


def enqueue_one() -> None:
    _sync().enqueue("noop", None)


def enqueue_bulk(n: int) -> None:
    _sync().enqueue(["noop"] * n, [None] * n, [0] * n)


if __name__ == "__main__":
    from pgqueuer.adapters.cli.cli import asyncio_run
    from pgqueuer.adapters.cli.supervisor import run

    asyncio_run(run(main))
