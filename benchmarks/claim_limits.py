"""Claim + ack rate with and without concurrency limits (issue 13).

    python benchmarks/claim_limits.py [--jobs N] [--batch B] [--db URL] [--variants a,b,...]

Enqueues N no-op jobs, then drains them the way a busy consumer's dispatcher does: one
transaction per round that acks the last B jobs and claims the next B
(``LiteStorage.ack_and_claim``), no job code run. Variants: ``none`` (no limits: the plain
claim), ``breaker`` (a closed breaker on the task), ``other`` (a concurrency limit on
another task), ``task`` (a limit on this task, never reached: B < limit), ``queue`` (a
limit on its queue, never reached). Prints jobs/s and this process's CPU per job (the
better figure on a busy machine: SQLite runs in the process; PostgreSQL's own work is not
in it) for each variant, best of ``--repeats``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from litequeue import LiteQueue
from litequeue.base.states import AttemptOutcome, JobStatus
from litequeue.base.values import Finished


def drain(db: str, variant: str, jobs: int, batch: int) -> tuple[float, float]:
    app = LiteQueue("bench", db=db)
    kwargs = {}
    if variant == "task":
        kwargs["concurrency"] = batch * 4
    if variant == "breaker":
        from litequeue import Breaker

        kwargs["breaker"] = Breaker(failures=5)

    @app.task(**kwargs)
    def noop(n):
        return n

    if variant == "other":
        @app.task(concurrency=2)
        def other(n):
            return n
    if variant == "queue":
        app.configure_queue("default", concurrency=batch * 4)
    if hasattr(app, "publish_limits"):
        app.publish_limits()
    noop.map(range(jobs))
    store = app.storage
    holder = "bench:1:x"
    finished: list[Finished] = []
    done = 0
    started, cpu = time.perf_counter(), time.process_time()
    while True:
        _, claims = store.ack_and_claim(holder, finished, None, batch)
        done += len(finished)
        if not claims:
            break
        now = time.time()
        finished = [Finished(c, "noop", JobStatus.SUCCEEDED, AttemptOutcome.SUCCEEDED, now, now) for c in claims]
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert done == jobs, (done, jobs)
    store.close()
    return jobs / elapsed, cpu / jobs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--db", default=None, help="a PostgreSQL URL (default: a fresh SQLite file per variant)")
    parser.add_argument("--variants", default="none,breaker,other,task,queue")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        best: dict[str, tuple[float, float]] = {}
        for r in range(args.repeats):
            for i, variant in enumerate(args.variants.split(",")):  # interleaved: load hits all alike
                db = args.db or str(Path(tmp) / f"bench{r}-{i}.db")
                if args.db:
                    _clear(db)
                rate, cpu = drain(db, variant, args.jobs, args.batch)
                old = best.get(variant, (0.0, float("inf")))
                best[variant] = (max(old[0], rate), min(old[1], cpu))
        for variant, (rate, cpu) in best.items():
            print(f"{variant:<8} {rate:>9.0f} jobs/s  {cpu:>7.1f} us CPU/job  "
                  f"({args.jobs} jobs, claim+ack {args.batch} per transaction, best of {args.repeats})")


def _clear(url: str) -> None:
    """A PostgreSQL database reused between variants: drop litequeue's tables."""
    from litequeue.store.database import open_database

    db = open_database(url)
    for (table,) in db.execute_sql("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                                   "AND left(tablename, 3) = 'lq_'").fetchall():
        db.execute_sql(f'DROP TABLE IF EXISTS "{table}" CASCADE')
    db.close()


if __name__ == "__main__":
    main()
