"""``status`` with 1,000,000 queued jobs on PostgreSQL (the local server).

    python benchmarks/pg_status.py [--queued 1000000] [--url postgresql://postgres@127.0.0.1:5432/test]

Makes a fresh database beside the one named by ``--url`` (dropped afterwards), writes the
schema and 1,000 real jobs through litequeue, then copies them in SQL up to ``--queued``
queued jobs (queue rows and ledger rows, four queues). Times ``queries.queue_summary`` in
the process (median of 7, after one warm-up) and the ``litequeue status`` command (wall time,
and less the interpreter's start-up, ``litequeue --version``), before and after the
server's ``ANALYZE`` (autovacuum runs one soon after a fill like this). Target: under 200 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.parse

import psycopg

from litequeue import LiteQueue
from litequeue.ledger import queries


def timed(fn, repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def cli_ms(url: str, *args: str, repeats: int = 5) -> float:
    env = dict(os.environ, LITEQUEUE_DB=url)
    return timed(lambda: subprocess.run([sys.executable, "-m", "litequeue", *args], env=env, check=True,
                                        capture_output=True), repeats)


def fill(url: str, queued: int) -> None:
    app = LiteQueue("bench", db=url)

    @app.task(queue="q0")
    def noop(i: int) -> None:
        return None

    app.enqueue_many([noop.s(i) for i in range(1000)])
    app.storage.close()
    with psycopg.connect(url, autocommit=True) as conn:
        have = conn.execute("SELECT COUNT(*) FROM lq_job").fetchone()[0]
        copies = -(-(queued - have) // have)
        conn.execute("CREATE TEMP TABLE copies AS SELECT s.id AS seed_id, s.id || ':' || g AS new_id, "
                     f"'q' || (g % 4) AS queue FROM lq_job s, generate_series(1, {copies}) g "
                     f"LIMIT {queued - have}")

        def columns(table: str, skip: tuple[str, ...]) -> list[str]:
            return [r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                "ORDER BY ordinal_position", (table,)) if r[0] not in skip]

        job_cols = columns("lq_job", ("id", "seq", "queue"))
        conn.execute(f"INSERT INTO lq_job (id, queue, {', '.join(job_cols)}) SELECT c.new_id, c.queue, "
                     f"{', '.join('s.' + c for c in job_cols)} FROM copies c JOIN lq_job s ON s.id = c.seed_id "
                     "ORDER BY c.new_id")
        ready_cols = columns("lq_ready", ("id", "job_id", "queue"))
        conn.execute(f"INSERT INTO lq_ready (job_id, queue, {', '.join(ready_cols)}) SELECT c.new_id, c.queue, "
                     f"{', '.join('r.' + c for c in ready_cols)} FROM copies c JOIN lq_ready r ON r.job_id = c.seed_id "
                     "ORDER BY c.new_id")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queued", type=int, default=1_000_000)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    name = f"lq_status_bench_{os.getpid()}"
    admin = psycopg.connect(args.url, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    parts = urllib.parse.urlsplit(args.url)
    url = urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    try:
        start = time.perf_counter()
        fill(url, args.queued)
        print(f"filled in {time.perf_counter() - start:.0f}s")
        with psycopg.connect(url, autocommit=True) as conn:
            jobs = conn.execute("SELECT status, COUNT(*) FROM lq_job GROUP BY status").fetchall()
            ready = conn.execute("SELECT COUNT(*) FROM lq_ready WHERE claimed_by IS NULL").fetchone()[0]
        print(f"ledger: {jobs}; queue rows unclaimed: {ready}")
        startup = cli_ms(url, "--version")
        for label in ("before ANALYZE", "after ANALYZE"):
            if label == "after ANALYZE":
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("VACUUM ANALYZE")
            app = LiteQueue("bench", db=url)
            summary = queries.queue_summary(app.storage.database)
            in_process = timed(lambda db=app.storage.database: queries.queue_summary(db))
            app.storage.close()
            wall = cli_ms(url, "status")
            print(f"{label}: queue_summary {in_process:.1f} ms in-process; `litequeue status` {wall:.0f} ms wall, "
                  f"{wall - startup:.0f} ms beyond start-up ({startup:.0f} ms)")
            print(f"  {summary}")
    finally:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


if __name__ == "__main__":
    main()
