"""The status page under load, and what it costs the consumers (a script, not a test).

    python benchmarks/page_load.py [--jobs 100000] [--clients 50] [--consumers 4] [--refresh 1.0] [--polls 5]

Each round drains ``--jobs`` queued no-op jobs with ``--consumers`` real consumer processes
(``litequeue run-consumer bench_tasks -w 8``) twice, on a fresh SQLite database each time,
while ``litequeue serve-web`` serves the same database: once with no one looking, once while
``--clients`` clients use the page as browsers do: each opens one of the overview, the job
list or a job's page (keeping its session cookie), then fetches that page's live-update JSON
(``/api/overview``, ``/api/jobs``, ``/api/jobs/<id>``, with the ``X-Litequeue-Live`` header
the page's script sends) every ``--refresh`` seconds, ``--polls`` times, and opens the next
page. The page itself refreshes every 3 s by default: a client here is three times as eager.
``--refresh 0`` makes every client poll back to back (a stress figure, not a browser's).
Clients run in ``--client-procs`` processes so that their own GIL does not add to the
latencies they measure. The largest size the SQLite WAL reached during each drain is
printed too: readers that never let go keep it from being checkpointed.

Printed: per page, p50 / p95 / p99 / max milliseconds and errors (anything but HTTP 200);
the drain rate alone and with the clients (jobs/s from the tasks' own start times), and
their ratio. Targets (issue "survive production"): p99 under 500 ms, no error, and the drain
within 10 % of its rate alone. The order of the two drains alternates between rounds.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import multiprocessing as mp
import os
import random
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import Consumer, Marks, percentile, serve_web, uptime, workdir  # noqa: E402

LIVE = {"X-Litequeue-Live": "1", "Accept": "application/json"}
PAGES = {
    "overview": ("/", "/api/overview"),
    "jobs": ("/jobs", "/api/jobs"),
    "job": ("/jobs/{id}", "/api/jobs/{id}"),
}


def _env(root: Path) -> dict[str, str]:
    env = dict(os.environ, LITEQUEUE_DB=str(root / "bench.db"), BENCH_MARKS=str(root / "marks"),
               PYTHONPATH=os.pathsep.join([str(HERE / "tasks"), os.environ.get("PYTHONPATH", "")]))
    env.pop("LITEQUEUE_APP", None)
    return env


def _enqueue(root: Path, env: dict[str, str], n: int) -> None:
    code = f"import bench_tasks; bench_tasks.enqueue_bulk({n})"
    subprocess.run([sys.executable, "-c", code], env=env, cwd=root, check=True, timeout=900)


def _job_ids(root: Path, n: int = 200) -> list[str]:
    with sqlite3.connect(root / "bench.db") as db:
        return [row[0] for row in db.execute("SELECT id FROM lq_job ORDER BY seq DESC LIMIT ?", (n,))]


def _serve(root: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    return serve_web(root, env, "--threads", "8", log=root / "web.log")


def _client(base: str, ids: list[str], refresh: float, polls: int, threads: int, stop_file: str,
            out: Any) -> None:
    """One client process: ``threads`` browsers, each opening pages and polling their JSON,
    until ``stop_file`` appears (the drain is over)."""
    import threading

    samples: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    lock = threading.Lock()

    def fetch(opener: urllib.request.OpenerDirector, name: str, path: str, headers: dict[str, str]) -> None:
        t0 = time.perf_counter()
        ok = False
        try:
            req = urllib.request.Request(base + path, headers=headers)
            with opener.open(req, timeout=30) as resp:
                resp.read()
                ok = resp.status == 200
        except (urllib.error.URLError, OSError):
            ok = False
        ms = (time.perf_counter() - t0) * 1000
        with lock:
            samples.setdefault(name, []).append(ms)
            if not ok:
                errors[name] = errors.get(name, 0) + 1

    def browser(seed: int, first: int) -> None:
        rng = random.Random(seed)
        # Pages in turn, browser i starting at page i: with as many browsers as pages, each
        # page is opened at once, however short the drain (a random pick missed one at times).
        names = list(PAGES)
        turn = first
        # A browser keeps the page's session cookie: its CSRF token is made once, not per page.
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        time.sleep(rng.uniform(0, max(refresh, 0.05)))  # browsers do not arrive in step
        while not os.path.exists(stop_file):
            name = names[turn % len(names)]
            turn += 1
            page, live = PAGES[name]
            job = rng.choice(ids)
            fetch(opener, name, page.format(id=job), {})
            for _ in range(polls):
                if refresh:
                    time.sleep(refresh)
                if os.path.exists(stop_file):
                    break
                fetch(opener, name + " (live JSON)", live.format(id=job), LIVE)

    pool = [threading.Thread(target=browser, args=(os.getpid() * 1000 + i, i)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put({"samples": samples, "errors": errors})


class _WalPeak:
    """The largest size a WAL file reaches, sampled every 0.2 s."""

    def __init__(self, path: Path) -> None:
        import threading

        self.path, self.peak, self._stop = path, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.peak = max(self.peak, self.path.stat().st_size)
            except OSError:
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def drain(n: int, consumers: int, workers: int, clients: int, client_procs: int, refresh: float, polls: int,
          base_dir: str | None) -> dict[str, Any]:
    with workdir(base_dir, "page-load") as root:
        env = _env(root)
        _enqueue(root, env, n)
        ids = _job_ids(root)
        server, base = _serve(root, env)
        marks = Marks(root / "marks")
        readers: list[mp.Process] = []
        results: mp.Queue[dict[str, Any]] = mp.Queue()
        stop_file = root / "stop"
        try:
            if clients:
                per = [clients // client_procs + (1 if i < clients % client_procs else 0)
                       for i in range(client_procs)]
                for k in per:
                    if k:
                        p = mp.Process(target=_client, args=(base, ids, refresh, polls, k, str(stop_file),
                                                             results))
                        p.start()
                        readers.append(p)
                time.sleep(max(refresh, 0.5) + 1)  # every client is polling before the drain starts
            wal = _WalPeak(root / "bench.db-wal")
            started = time.time()
            pool = [Consumer([sys.executable, "-m", "litequeue", "run-consumer", "bench_tasks", "-w",
                              str(workers)], env, root) for _ in range(consumers)]
            try:
                if not marks.wait_count(n, timeout=1800, poll=0.05):
                    raise RuntimeError(f"drain did not finish: {marks.count()} of {n}; see {root}")
            finally:
                for c in pool:
                    c.stop()
            elapsed = time.time() - started
            wal.stop()
            stop_file.touch()
            merged: dict[str, list[float]] = {}
            errors: dict[str, int] = {}
            for _ in readers:
                part = results.get(timeout=120)
                for name, values in part["samples"].items():
                    merged.setdefault(name, []).extend(values)
                for name, count in part["errors"].items():
                    errors[name] = errors.get(name, 0) + count
            for p in readers:
                p.join(30)
            times = sorted(marks.times())
            rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
            return {"rate": rate, "elapsed": elapsed, "samples": merged, "errors": errors, "wal_mb": wal.peak / 1e6}
        finally:
            stop_file.touch()
            for p in readers:
                if p.is_alive():
                    p.kill()
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--client-procs", type=int, default=5)
    parser.add_argument("--consumers", type=int, default=4)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--refresh", type=float, default=1.0, help="seconds between a client's live refreshes")
    parser.add_argument("--polls", type=int, default=5, help="live refreshes of a page before the next page")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--dir", default=None, help="where the temporary databases go")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    print(f"# page load: {args.jobs:,} jobs, {args.consumers} consumers -w {args.workers}, "
          f"{args.clients} clients refreshing every {args.refresh:g} s; {uptime()}")
    alone: list[float] = []
    looked: list[float] = []
    samples: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    for r in range(args.rounds):
        order = (0, args.clients) if r % 2 == 0 else (args.clients, 0)
        for clients in order:
            res = drain(args.jobs, args.consumers, args.workers, clients, args.client_procs, args.refresh,
                        args.polls, args.dir)
            print(f"  round {r + 1}, {clients} clients: {res['rate']:,.0f} jobs/s "
                  f"({res['elapsed']:.1f} s; WAL peak {res['wal_mb']:.0f} MB)", flush=True)
            (looked if clients else alone).append(res["rate"])
            for name, values in res["samples"].items():
                samples.setdefault(name, []).extend(values)
            for name, count in res["errors"].items():
                errors[name] = errors.get(name, 0) + count
    print("\n| page | requests | p50 ms | p95 ms | p99 ms | max ms | errors |\n|---|---|---|---|---|---|---|")
    for name in sorted(samples):
        v = samples[name]
        print(f"| {name} | {len(v):,} | {percentile(v, 50):.0f} | {percentile(v, 95):.0f} | "
              f"{percentile(v, 99):.0f} | {max(v):.0f} | {errors.get(name, 0)} |")
    every = [x for v in samples.values() for x in v]
    mean_alone = sum(alone) / len(alone)
    mean_looked = sum(looked) / len(looked)
    ratio = mean_looked / mean_alone
    p99 = percentile(every, 99) if every else 0.0
    print(f"\ndrain alone: {mean_alone:,.0f} jobs/s; with {args.clients} clients: {mean_looked:,.0f} jobs/s "
          f"({ratio:.2f}x; target >= 0.90x: {'met' if ratio >= 0.9 else 'missed'})")
    print(f"every request: p99 {p99:.0f} ms (target < 500 ms: {'met' if p99 < 500 else 'missed'}), "
          f"{sum(errors.values())} errors (target 0: {'met' if not errors else 'missed'})")
    if args.json:
        Path(args.json).write_text(json.dumps({"alone": alone, "with_clients": looked, "p99_ms": p99,
                                               "errors": errors, "uptime": uptime()}, indent=2))


if __name__ == "__main__":
    main()
