"""Flat at a million jobs: claim+ack and ``status`` with a big queue and ledger, and the
consumer's memory over a long drain.

    python benchmarks/scale.py [--big 1000000] [--drain 200000] [--skip-drain]

* claim+ack: one job claimed and acknowledged per pair (and batches of 8), timed with
  1,000 jobs queued, with ``--big`` queued, and with 1,000 queued beside a ledger of
  ``--big`` finished jobs (the target: no more than 1.5x the time with 1,000);
* status: ``queue_summary`` in-process and the ``litequeue status`` command (wall time,
  and less the interpreter's start-up) on both big databases (target: under 200 ms);
* memory: ``litequeue run-consumer bench_tasks -w 8`` drains ``--drain`` jobs; its RSS is
  sampled every second (target: growth under 50 MB over 1,000,000 jobs).

Tables are filled with ``enqueue_many`` (and one SQL pass that marks the finished ledger),
with ``durability="fast"`` for the fill only. Results go to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import BIN, HERE, TASKS_DIR, Consumer, Marks, percentile, tree_rss, uptime, workdir

from litequeue import LiteQueue
from litequeue.base.states import AttemptOutcome, JobStatus
from litequeue.base.values import Finished
from litequeue.ledger import queries

CHUNK = 50_000
WARMUP = 20


def make_app(path: Path, durability: str) -> LiteQueue:
    app = LiteQueue("bench", db=path, durability=durability)

    @app.task(name="noop")
    def noop() -> None:
        return None

    app.noop = noop  # type: ignore[attr-defined]
    return app


def fill(path: Path, n: int) -> float:
    """Queue ``n`` no-op jobs with ``enqueue_many``; returns jobs/s."""
    app = make_app(path, "fast")
    t0 = time.perf_counter()
    left = n
    while left > 0:
        k = min(CHUNK, left)
        app.enqueue_many([app.noop.s() for _ in range(k)])  # type: ignore[attr-defined]
        left -= k
    rate = n / (time.perf_counter() - t0)
    app.storage.database.close()
    return rate


def finish_all(path: Path) -> None:
    """Turn every queued job into a succeeded one with its attempt (a finished ledger)."""
    app = make_app(path, "fast")
    s = app.storage
    now = time.time()
    with s.write():
        s.sql("INSERT INTO lq_attempt (job_id, number, consumer_id, started_at, finished_at, outcome) "
              "SELECT job_id, 1, 'scale', ?, ?, 'succeeded' FROM lq_ready", (now - 1, now))
        s.sql("UPDATE lq_job SET status = 'succeeded', attempts = 1, started_at = ?, finished_at = ?, "
              "updated_at = ? WHERE status = 'queued'", (now - 1, now, now))
        s.sql("DELETE FROM lq_ready")
    s.database.close()


def claim_ack(path: Path, pairs: int, batch: int) -> dict[str, float]:
    """Time ``pairs`` claim-then-ack rounds of ``batch`` jobs (default durability)."""
    app = make_app(path, "full")
    s = app.storage
    times = []
    for i in range(WARMUP + pairs):
        t0 = time.perf_counter()
        claims = s.claim("scale-bench", None, batch)
        now = time.time()
        s.ack("scale-bench", [Finished(c, "noop", JobStatus.SUCCEEDED, AttemptOutcome.SUCCEEDED, now, now)
                              for c in claims])
        if i >= WARMUP:  # the first rounds warm the page cache and statement cache
            times.append(time.perf_counter() - t0)
        if len(claims) != batch:
            raise RuntimeError(f"claimed {len(claims)} of {batch}: the queue ran dry")
    s.database.close()
    ms = [1000 * t for t in times]
    return {"median_ms": statistics.median(ms), "p95_ms": percentile(ms, 95), "pairs": pairs, "batch": batch}


def status_time(path: Path) -> dict[str, float]:
    app = make_app(path, "full")
    db = app.storage.database
    inproc = []
    for _ in range(5):
        t0 = time.perf_counter()
        queries.queue_summary(db)
        queries.consumers(db, alive_only=True)
        inproc.append(1000 * (time.perf_counter() - t0))
    db.close()
    exe = str(BIN / "litequeue")

    def wall(*args: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([exe, *args], check=True, capture_output=True)
        return 1000 * (time.perf_counter() - t0)
    cli = statistics.median(wall("--db", str(path), "status") for _ in range(3))
    startup = statistics.median(wall("--version") for _ in range(3))
    return {"queue_summary_ms": statistics.median(inproc), "cli_wall_ms": cli,
            "cli_startup_ms": startup, "cli_less_startup_ms": cli - startup}


def drain_rss(n: int, base: str | None) -> dict[str, Any]:
    """Drain ``n`` jobs with the real consumer, sampling its RSS once a second."""
    with workdir(base, "scale-rss") as tmp:
        env = dict(os.environ, LITEQUEUE_DB=str(tmp / "litequeue.db"), BENCH_MARKS=str(tmp / "marks"),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(TASKS_DIR), os.environ.get("PYTHONPATH")])))
        code = ("import bench_tasks as t\n"
                f"for _ in range({n // CHUNK}): t.enqueue_bulk({CHUNK})\n"
                f"t.enqueue_bulk({n % CHUNK}) if {n % CHUNK} else None\n")
        subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp, check=True)
        marks = Marks(tmp / "marks")
        consumer = Consumer([str(BIN / "litequeue"), "-q", "run-consumer", "bench_tasks", "-w", "8"], env, tmp)
        samples: list[tuple[float, int, int]] = []
        t0 = time.monotonic()
        try:
            while marks.count() < n and consumer.alive():
                samples.append((time.monotonic() - t0, marks.count(), tree_rss(consumer.pid)))
                time.sleep(1.0)
            samples.append((time.monotonic() - t0, marks.count(), tree_rss(consumer.pid)))
        finally:
            consumer.stop()
    warm = next((s for s in samples if s[1] >= min(n, 5_000)), samples[-1])
    peak = max(s[2] for s in samples)
    return {"jobs": n, "done": samples[-1][1], "seconds": round(samples[-1][0], 1),
            "rss_after_warmup_mb": warm[2] / 2**20, "rss_end_mb": samples[-1][2] / 2**20,
            "rss_peak_mb": peak / 2**20, "growth_mb": (samples[-1][2] - warm[2]) / 2**20,
            "samples": [(round(t, 1), done, round(rss / 2**20, 1)) for t, done, rss in samples]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--big", type=int, default=1_000_000, help="jobs queued / in the ledger (default 1,000,000)")
    ap.add_argument("--small", type=int, default=1_000)
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--drain", type=int, default=200_000, help="jobs drained for the RSS figure")
    ap.add_argument("--skip-drain", action="store_true")
    ap.add_argument("--dir", default=None, help="where the databases go (default: the temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the databases (to profile them)")
    args = ap.parse_args()
    report: dict[str, Any] = {"uptime_before": uptime(), "config": vars(args)}
    print(f"# {report['uptime_before']}", flush=True)
    with workdir(args.dir, "scale", keep=args.keep) as tmp:
        small, big, ledger = tmp / "small.db", tmp / "big.db", tmp / "ledger.db"
        report["fill_jobs_per_s"] = fill(small, args.small + (args.pairs + WARMUP) * 9)
        fill(big, args.big)
        report["fill_big_jobs_per_s"] = fill(ledger, args.big)
        finish_all(ledger)
        fill(ledger, args.small + (args.pairs + WARMUP) * 9)
        print(f"- filled ({report['fill_big_jobs_per_s']:,.0f} jobs/s with enqueue_many)", flush=True)
        report["claim_ack"] = {}
        for label, path in ((f"{args.small:,} queued", small), (f"{args.big:,} queued", big),
                            (f"{args.small:,} queued, {args.big:,} finished in the ledger", ledger)):
            one = claim_ack(path, args.pairs, 1)
            eight = claim_ack(path, args.pairs, 8)
            report["claim_ack"][label] = {"batch1": one, "batch8": eight}
            print(f"- claim+ack, {label}: {one['median_ms']:.2f} ms per pair (p95 {one['p95_ms']:.2f}); "
                  f"batch of 8: {eight['median_ms']:.2f} ms (p95 {eight['p95_ms']:.2f})", flush=True)
        base = report["claim_ack"][f"{args.small:,} queued"]
        for r in report["claim_ack"].values():
            r["ratio_to_small"] = {k: r[k]["median_ms"] / base[k]["median_ms"] for k in ("batch1", "batch8")}
        report["status"] = {}
        for label, path in ((f"{args.big:,} queued", big), (f"{args.big:,} finished", ledger)):
            st = status_time(path)
            report["status"][label] = st
            print(f"- status, {label}: queue_summary {st['queue_summary_ms']:.1f} ms; `litequeue status` "
                  f"{st['cli_wall_ms']:.0f} ms wall ({st['cli_less_startup_ms']:.0f} ms beyond the "
                  f"{st['cli_startup_ms']:.0f} ms start-up)", flush=True)
    if not args.skip_drain:
        r = drain_rss(args.drain, args.dir)
        report["drain_rss"] = r
        print(f"- RSS over a drain of {r['done']:,} jobs ({r['seconds']} s): {r['rss_after_warmup_mb']:.1f} MB "
              f"after warm-up, {r['rss_end_mb']:.1f} MB at the end (peak {r['rss_peak_mb']:.1f}), "
              f"growth {r['growth_mb']:+.1f} MB", flush=True)
    report["uptime_after"] = uptime()
    print(f"# {report['uptime_after']}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    path = out / f"scale-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"written: {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
