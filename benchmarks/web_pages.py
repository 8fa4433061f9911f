"""How fast the status page answers on a big ledger (a script, not a test).

    python benchmarks/web_pages.py [--jobs 200000] [--runs 20] [--db PATH] [--json FILE]

Builds a ledger of ``--jobs`` jobs through the real enqueue path (``LiteStorage.insert_jobs``),
then turns it into a realistic mix (93% succeeded, 5% failed with a traceback, 1% cancelled,
the newest 1% still queued; one attempt row per started job), serves it with waitress in this
process and times each page over real HTTP: the job list's first page and a deep page (keyset,
150,000 rows down), filtered and searched lists, a job, the overview and /metrics, the
Running, Consumers, queue, retrying, Periodic, Batches and Stats pages. Prints a markdown
table of median / p95 / max milliseconds. Targets: the overview and the job lists under
100 ms each at 200,000 jobs.

Then what the live pages cost a consumer: the time of a writer's commit (100 jobs enqueued,
as a consumer's group commit writes them) alone, and while four threads poll the live JSON
(``/api/overview``, ``/api/running``, ``/api/jobs``) back to back, far more than browsers
refreshing every 3 s do.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from litequeue.base.values import NewJob
from litequeue.engine.storage import open_store

QUEUES = ("default", "mail", "reports", "ocr")
TASKS = ("send_receipt", "resize_image", "build_report", "ocr_page", "sync_crm", "cleanup")
TRACEBACK = ("Traceback (most recent call last):\n  File \"/srv/app/tasks.py\", line 42, in sync_crm\n"
             "    response.raise_for_status()\n" + "  ...\n" * 20 +
             "requests.exceptions.HTTPError: 502 Server Error: Bad Gateway for url: https://crm.example/api")


def build(db: str, n: int) -> None:
    store = open_store(db, create=True, app="bench")
    start = time.time() - 7 * 86400
    chunk = 10_000
    t0 = time.perf_counter()
    for base in range(0, n, chunk):
        jobs = []
        for i in range(base, min(n, base + chunk)):
            args = json.dumps([i, f"customer-{i % 5000}@example.com", {"order": 10_000 + i, "items": i % 7}])
            jobs.append(NewJob(str(uuid.uuid4()), TASKS[i % len(TASKS)], QUEUES[i % len(QUEUES)], i % 3,
                               b"\x80\x04" + os.urandom(96), args=args, kwargs='{"retry": false}'))
        with store.write():
            store.insert_jobs(jobs, start + (7 * 86400) * base / n)
    queued_from = int(n * 0.99)
    with store.write():
        # seq follows insertion order: every 20th job failed, every 100th cancelled, the newest
        # 1% is still queued, the rest succeeded.
        store.sql("UPDATE lq_job SET status = CASE WHEN seq % 20 = 0 THEN 'failed' WHEN seq % 100 = 1 "
                  "THEN 'cancelled' ELSE 'succeeded' END, started_at = enqueued_at + 0.01, "
                  "finished_at = enqueued_at + 0.01 + (seq % 50) * 0.02, attempts = 1, worker = 'bench:1:a', "
                  "result = CASE WHEN seq % 20 = 0 THEN NULL ELSE '{\"ok\": true}' END, "
                  "error = CASE WHEN seq % 20 = 0 THEN 'HTTPError: 502 Server Error: Bad Gateway' END, "
                  "traceback = CASE WHEN seq % 20 = 0 THEN ? END WHERE seq <= ?", (TRACEBACK, queued_from))
        store.sql("DELETE FROM lq_ready WHERE job_id IN (SELECT id FROM lq_job WHERE seq <= ?)", (queued_from,))
        store.sql("INSERT INTO lq_attempt (job_id, number, consumer_id, started_at, finished_at, outcome, error) "
                  "SELECT id, 1, worker, started_at, finished_at, status, error FROM lq_job WHERE started_at "
                  "IS NOT NULL")
        store.sql("INSERT INTO lq_finished (queue, task, outcome, count, duration_sum) SELECT queue, task, "
                  "status, COUNT(*), SUM(finished_at - started_at) FROM lq_job WHERE finished_at IS NOT NULL "
                  "GROUP BY queue, task, status")
    store.sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.database.close()
    print(f"built {n:,} jobs in {time.perf_counter() - t0:.1f}s ({os.path.getsize(db) / 1e6:.0f} MB)",
          file=sys.stderr)


def serve(db: str) -> tuple[str, Any]:
    import waitress

    from litequeue_web import WebSettings, create_app

    server = waitress.create_server(create_app(WebSettings(db=db)), host="127.0.0.1", port=0, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    return f"http://127.0.0.1:{server.effective_port}", server


def fetch(url: str) -> tuple[float, int, bytes]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as r:
        body = r.read()
        status = r.status
    return (time.perf_counter() - t0) * 1000, status, body


def measure(base: str, path: str, runs: int) -> dict[str, Any]:
    for _ in range(2):  # warm the page cache and Jinja's template cache
        fetch(base + path)
    times = []
    size = 0
    for _ in range(runs):
        ms, status, body = fetch(base + path)
        assert status == 200, (path, status)
        times.append(ms)
        size = len(body)
    times.sort()
    return {"path": path, "median_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[min(len(times) - 1, int(len(times) * 0.95))], 1),
            "max_ms": round(times[-1], 1), "bytes": size}


def uncached_histograms(db: str, runs: int) -> dict[str, Any]:
    """/metrics serves histograms from a 15 s cache; this is the scan behind a cache miss."""
    from litequeue.ledger import metrics
    from litequeue.store.database import open_database

    reader = open_database(db, readonly=True, create=False)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        metrics.histograms(reader)
        times.append((time.perf_counter() - t0) * 1000)
    reader.close()
    times.sort()
    return {"path": "(metrics histograms, cache miss)", "median_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[-1], 1), "max_ms": round(times[-1], 1), "bytes": 0}


def _commit_ms(store: Any, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        jobs = [NewJob(str(uuid.uuid4()), "send_receipt", "live", 0, b"\x80\x04" + os.urandom(32), args="[1]",
                       kwargs="{}") for _ in range(100)]
        t0 = time.perf_counter()
        with store.write():
            store.insert_jobs(jobs, time.time())
        times.append((time.perf_counter() - t0) * 1000)
    return times


def write_cost(db: str, base: str, rounds: int = 60) -> dict[str, Any]:
    """A writer's commit alone and while the live JSON is polled hard: median / p95 ms."""
    store = open_store(db)
    quiet = _commit_ms(store, rounds)
    stop = threading.Event()
    polls = [0]

    def poll() -> None:
        while not stop.is_set():
            for path in ("/api/overview", "/api/running", "/api/jobs"):
                fetch(base + path)
                polls[0] += 1

    pollers = [threading.Thread(target=poll, daemon=True) for _ in range(4)]
    for t in pollers:
        t.start()
    time.sleep(0.5)
    busy = _commit_ms(store, rounds)
    stop.set()
    for t in pollers:
        t.join(30)
    store.database.close()

    def stats(v: list[float]) -> dict[str, float]:
        v = sorted(v)
        return {"median_ms": round(statistics.median(v), 2), "p95_ms": round(v[int(len(v) * 0.95) - 1], 2)}
    return {"alone": stats(quiet), "polled": stats(busy), "polls": polls[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--db", default=None, help="Reuse (or build once) the ledger at this path.")
    parser.add_argument("--json", default=None, help="Also write the results as JSON to this file.")
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="lq-web-bench-")
    db = args.db or str(Path(tmp.name) / "bench.db")
    if not os.path.exists(db):
        build(db, args.jobs)
    base, server = serve(db)
    api = json.loads(fetch(base + "/api/jobs")[2])
    deep_after = api["jobs"][0]["seq"] - 150_000 if api["jobs"][0]["seq"] > 150_000 else api["next_after"]
    some_failed = json.loads(fetch(base + "/api/jobs?status=failed")[2])["jobs"][0]["id"]
    paths = [
        "/jobs", f"/jobs?after={deep_after}",
        "/api/jobs", f"/api/jobs?after={deep_after}",
        "/jobs?status=failed", f"/jobs?status=failed&after={deep_after}",
        "/jobs?queue=ocr", f"/jobs?queue=ocr&after={deep_after}",
        "/jobs?task=cleanup", "/jobs?status=queued",
        "/jobs?q=customer-4242%40example.com", "/jobs?q=no-such-text",
        f"/jobs/{some_failed}", "/", "/api/overview", "/metrics", "/jobs/retry-failed",
        "/jobs?status=failed&retried=no", "/jobs?status=retrying", "/jobs?task=tasks.cleanup",
        "/running", "/api/running", "/consumers", "/queue/ocr", "/api/queue/ocr", "/periodic", "/batches",
        "/stats",
    ]
    results = [measure(base, p, args.runs) for p in paths]
    writes = write_cost(db, base)
    server.close()
    results.append(uncached_histograms(db, max(3, args.runs // 4)))
    print(f"\nStatus page on a {args.jobs:,}-job ledger ({args.runs} requests each, real HTTP, waitress)\n")
    print("| page | median ms | p95 ms | max ms | KB |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| `{r['path']}` | {r['median_ms']} | {r['p95_ms']} | {r['max_ms']} | {r['bytes'] / 1024:.0f} |")
    print(f"\nA 100-job commit: alone {writes['alone']['median_ms']} ms median / {writes['alone']['p95_ms']} ms p95; "
          f"while the live JSON was polled {writes['polls']:,} times by 4 threads: {writes['polled']['median_ms']} ms "
          f"median / {writes['polled']['p95_ms']} ms p95")
    if args.json:
        Path(args.json).write_text(json.dumps({"jobs": args.jobs, "results": results, "writes": writes}, indent=2))


if __name__ == "__main__":
    main()
