"""Count and time the write transactions of a litequeue drain (a diagnostic, not a benchmark).

    python benchmarks/trace_commits.py [--jobs 20000] [--durability full|fast] [-w 8]

Bulk-enqueues ``--jobs`` no-op jobs, then runs the real consumer in this process with
``LiteStorage.claim``/``ack`` and the write transactions' ``BEGIN`` wrapped by timers,
stops it when every job is done, and prints per kind: transactions, jobs per
transaction, time inside, and time spent waiting for SQLite's write lock.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from harness import TASKS_DIR, workdir

stats: dict[str, list[float]] = collections.defaultdict(list)
lock = threading.Lock()


def record(kind: str, value: float) -> None:
    with lock:
        stats[kind].append(value)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=20_000)
    ap.add_argument("--durability", choices=["full", "fast"], default="full")
    ap.add_argument("-w", "--workers", type=int, default=8)
    args = ap.parse_args()
    with workdir(None, "trace") as tmp:
        os.environ.update(LITEQUEUE_DB=str(tmp / "litequeue.db"), BENCH_MARKS=str(tmp / "marks"),
                          LITEQUEUE_DURABILITY=args.durability)
        sys.path.insert(0, str(TASKS_DIR))
        import logging

        import bench_tasks
        import peewee

        from litequeue.engine.storage import LiteStorage

        logging.basicConfig(level=logging.WARNING)
        bench_tasks.enqueue_bulk(args.jobs)

        def timed(kind: str, fn: Any, jobs: Any) -> Any:
            def wrapper(self: Any, *a: Any, **kw: Any) -> Any:
                t0 = time.perf_counter()
                out = fn(self, *a, **kw)
                record(kind + "_s", time.perf_counter() - t0)
                for name, n in jobs(a, out):
                    record(f"{kind}_{name}", n)
                return out
            return wrapper

        # Whichever the consumer uses: one ack-and-claim transaction a round, or separate ones.
        LiteStorage.claim = timed("claim", LiteStorage.claim,  # type: ignore[method-assign]
                                  lambda a, out: [("jobs", len(out))])
        LiteStorage.ack = timed("ack", LiteStorage.ack,  # type: ignore[method-assign]
                                lambda a, out: [("jobs", len(a[1]))])
        if hasattr(LiteStorage, "ack_and_claim"):
            LiteStorage.ack_and_claim = timed(  # type: ignore[method-assign]
                "round", LiteStorage.ack_and_claim,
                lambda a, out: [("jobs", len(a[1]) + len(out[1])), ("acked", len(a[1])), ("claimed", len(out[1]))])
        begin = peewee.SqliteDatabase.begin

        def timed_begin(self: Any, *a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return begin(self, *a, **kw)
            finally:
                record(f"begin_{threading.current_thread().name}", time.perf_counter() - t0)

        peewee.SqliteDatabase.begin = timed_begin  # type: ignore[method-assign]
        consumer = bench_tasks.app.create_consumer(workers=args.workers)
        marks = Path(os.environ["BENCH_MARKS"])
        t0 = time.perf_counter()

        def stop_when_done() -> None:
            while not marks.exists() or marks.stat().st_size // 18 < args.jobs:
                time.sleep(0.01)
            record("drain_s", time.perf_counter() - t0)
            time.sleep(0.2)
            consumer.stop(graceful=True)

        threading.Thread(target=stop_when_done, daemon=True).start()
        consumer.run()
    drain = stats["drain_s"][0]
    print(f"{args.jobs} jobs drained in {drain:.2f} s = {args.jobs / drain:,.0f} jobs/s "
          f"(durability {args.durability}, -w {args.workers}, load {os.getloadavg()[0]:.2f})")
    for kind in ("round", "claim", "ack"):
        n, secs, jobs = len(stats[kind + "_s"]), sum(stats[kind + "_s"]), stats[kind + "_jobs"]
        if n:
            extra = ""
            if kind == "round":
                extra = (f" ({sum(stats['round_acked']) / n:.2f} acked + "
                         f"{sum(stats['round_claimed']) / n:.2f} claimed)")
            print(f"{kind:>6}: {n:6d} txns, {sum(jobs) / n:5.2f} jobs/txn{extra} (max {max(jobs)}), "
                  f"{secs:6.2f} s inside, {1000 * secs / n:5.2f} ms/txn")
    for key in sorted(k for k in stats if k.startswith("begin_")):
        v = stats[key]
        slow = sum(1 for x in v if x > 0.001)
        print(f"{key:>16}: {len(v):6d} BEGINs, {sum(v):6.2f} s waiting for the write lock, "
              f"{slow} waited > 1 ms, max {1000 * max(v):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
