"""Time one consumer's ack-and-claim rounds on PostgreSQL, in this process (a diagnostic).

    python benchmarks/pg_round.py [--url postgresql://...] [--rounds 300] [--batch 8] [--no-pipeline]

Creates a fresh database (dropped afterwards), bulk-enqueues no-op jobs, then runs
``LiteStorage.ack_and_claim`` rounds of ``--batch`` acks and ``--batch`` claims, as a busy
consumer's dispatcher does, and prints the round's p50 and mean. ``--no-pipeline`` runs
the same rounds without psycopg's pipeline mode (``dialect.pipelined``), one round trip
per statement, for comparison. Run both, alternating, on a quiet machine.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import uuid

import psycopg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test", help="server and admin database")
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--no-pipeline", action="store_true")
    args = ap.parse_args()

    from litequeue import LiteQueue
    from litequeue.base.states import AttemptOutcome, JobStatus
    from litequeue.base.values import Finished
    from litequeue.engine import storage
    if args.no_pipeline:
        storage.dialect.pipelined = lambda db: contextlib.nullcontext()  # type: ignore[assignment]

    name = f"lq_round_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        app = LiteQueue("rounds", db=args.url.rsplit("/", 1)[0] + "/" + name)
        job = app.task(name="job")(lambda: None)
        job.map([()] * (args.batch * (args.rounds + 2)))
        holder = "round-bench"
        _, claims = app.storage.ack_and_claim(holder, [], None, args.batch, start_first=args.batch)
        times = []
        for _ in range(args.rounds):
            now = time.time()
            done = [Finished(c, "job", JobStatus.SUCCEEDED, AttemptOutcome.SUCCEEDED, now, now) for c in claims or []]
            t0 = time.perf_counter()
            _, claims = app.storage.ack_and_claim(holder, done, None, args.batch, start_first=args.batch)
            times.append(time.perf_counter() - t0)
        app.storage.close()
        mean = statistics.mean(times)
        which = "without" if args.no_pipeline else "with"
        print(f"{which} pipeline: round p50 {statistics.median(times) * 1000:.2f} ms, "
              f"mean {mean * 1000:.2f} ms ({args.batch} acks + {args.batch} claims): {args.batch / mean:,.0f} jobs/s")
    finally:
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
