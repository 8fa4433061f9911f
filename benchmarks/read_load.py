"""Reads do not block writes: a drain alone and beside the heaviest readers (a script, not a test).

    python benchmarks/read_load.py [--jobs 20000] [--history 100000] [--consumers 4] [--postgres]

A database is filled once with ``--history`` finished jobs (a bulk enqueue drained by
``run-consumer --burst``: the ledger a month of work leaves). Each drain starts from a copy
of it (a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL), enqueues
``--jobs`` no-op jobs and drains them with ``--consumers`` consumers (``-w 8``), twice: alone,
and while these run side by side in loops until the drain is over:

- ``litequeue jobs list --json --limit 100000`` (an export of 100,000 rows),
- ``litequeue stats --since 30d --json`` (statistics over a month),
- ``litequeue top --once`` every second (the live view),
- the status page held open: ``/`` and its live JSON ``/api/overview`` every second.

Printed: the drain rate (jobs/s from the tasks' own start times), run-to-ack time
(``finished_at - started_at`` of each drained job, from the ledger: a noop's time is almost
all claim and ack) p50 / p99, the longest gap between two consecutive acks, and how often
each reader ran and how long it took. The order of the two drains alternates between rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import CLK_TCK, Consumer, Marks, percentile, serve_web, tree_ticks, uptime, workdir  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
READERS = {
    "jobs list --json (100,000)": ["jobs", "list", "--json", "--limit", "100000"],
    "stats --since 30d": ["stats", "--since", "30d", "--json"],
    "top --once": ["top", "--once"],
}


def _env(root: Path, db: str) -> dict[str, str]:
    env = dict(os.environ, LITEQUEUE_DB=db, BENCH_MARKS=str(root / "marks"),
               PYTHONPATH=os.pathsep.join([str(HERE / "tasks"), os.environ.get("PYTHONPATH", "")]))
    env.pop("LITEQUEUE_APP", None)
    return env


def _py(env: dict[str, str], root: Path, code: str) -> None:
    subprocess.run([sys.executable, "-c", code], env=env, cwd=root, check=True, timeout=1800)


def _lq(env: dict[str, str], root: Path, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "litequeue", *args], env=env, cwd=root, check=True,
                          capture_output=True, text=True, timeout=1800).stdout


def _pg(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN, connect_timeout=5)
    try:
        conn.autocommit = True
        conn.cursor().execute(sql)
    finally:
        conn.close()


def _pg_url(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def fill(root: Path, db: str, history: int) -> None:
    env = _env(root, db)
    _lq(env, root, "migrate")
    if history:
        _py(env, root, f"import bench_tasks; bench_tasks.enqueue_bulk({history})")
        pool = [subprocess.Popen([sys.executable, "-m", "litequeue", "run-consumer", "bench_tasks", "-w", "8",
                                  "--burst"], env=env, cwd=root, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL) for _ in range(2)]
        for p in pool:
            p.wait(1800)
    (root / "marks").unlink(missing_ok=True)


def _reader(name: str, argv: list[str], env: dict[str, str], root: Path, stop: threading.Event,
            out: dict[str, list[float]]) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "litequeue", *argv], env=env, cwd=root,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, used = os.wait4(proc.pid, 0)  # its CPU time too: what it took from the drain
        proc.returncode = 0
        out.setdefault(name, []).append(time.perf_counter() - t0)
        out.setdefault(f"cpu:{name}", []).append(used.ru_utime + used.ru_stime)
        if name.startswith("top"):
            stop.wait(1.0)


def _page(base: str, stop: threading.Event, out: dict[str, list[float]]) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        for path in ("/", "/api/overview"):
            try:
                with urllib.request.urlopen(base + path, timeout=60) as resp:
                    resp.read()
            except OSError:
                out.setdefault("page errors", []).append(0.0)
        out.setdefault("page held open (/ + /api/overview)", []).append(time.perf_counter() - t0)
        stop.wait(1.0)


def _cpu_times() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far (/proc/stat, every core)."""
    fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / CLK_TCK, sum(fields) / CLK_TCK


def _serve(env: dict[str, str], root: Path) -> tuple[subprocess.Popen[bytes], str]:
    return serve_web(root, env)


def drain(root: Path, db: str, n: int, consumers: int, with_readers: bool) -> dict[str, Any]:
    env = _env(root, db)
    _py(env, root, f"import bench_tasks; bench_tasks.enqueue_bulk({n})")
    marks = Marks(root / "marks")
    stop = threading.Event()
    readers: dict[str, list[float]] = {}
    threads: list[threading.Thread] = []
    server = None
    if with_readers:
        server, base = _serve(env, root)
        threads = [threading.Thread(target=_reader, args=(name, argv, env, root, stop, readers))
                   for name, argv in READERS.items()]
        threads.append(threading.Thread(target=_page, args=(base, stop, readers)))
        for t in threads:
            t.start()
        time.sleep(2)  # every reader is running before the drain starts
    pool = [Consumer([sys.executable, "-m", "litequeue", "run-consumer", "bench_tasks", "-w", "8"], env, root)
            for _ in range(consumers)]
    busy0, total0 = _cpu_times()
    web0 = tree_ticks(server.pid) if server is not None else 0
    try:
        if not marks.wait_count(n, timeout=1800, poll=0.05):
            raise RuntimeError(f"drain did not finish: {marks.count()} of {n}")
        busy1, total1 = _cpu_times()
        if server is not None:
            readers["cpu:page held open (/ + /api/overview)"] = [(tree_ticks(server.pid) - web0) / CLK_TCK]
    finally:
        stop.set()
        for c in pool:
            c.stop()
        for t in threads:
            t.join(600)
        if server is not None:
            server.terminate()
            server.wait(10)
    times = sorted(marks.times())
    (root / "marks").unlink()
    jobs = json.loads(_lq(env, root, "jobs", "list", "--json", "--status", "succeeded", "--limit", str(n)))
    run_ack = [(_ts(j["finished_at"]) - _ts(j["started_at"])) * 1000 for j in jobs]
    finished = sorted(_ts(j["finished_at"]) for j in jobs)
    gaps = [(b - a) * 1000 for a, b in zip(finished, finished[1:], strict=False)]
    return {"rate": (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0,
            "run_ack_p50": percentile(run_ack, 50), "run_ack_p99": percentile(run_ack, 99),
            "max_gap": max(gaps) if gaps else 0.0, "readers": readers,
            "machine_busy": (busy1 - busy0) / max(1e-9, total1 - total0)}


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--consumers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    where = "PostgreSQL" if args.postgres else "SQLite (WAL)"
    print(f"# read load on {where}: {args.jobs:,} jobs, {args.consumers} consumers -w 8, beside a ledger of "
          f"{args.history:,} finished jobs; {uptime()}", flush=True)
    rows: list[tuple[str, dict[str, Any]]] = []
    with workdir(args.dir, "read-load") as root:
        template = "lqread_" + uuid.uuid4().hex[:10]
        made: list[str] = []
        try:
            if args.postgres:
                _pg(f'CREATE DATABASE "{template}"')
                made.append(template)
                fill(root, _pg_url(template), args.history)
            else:
                fill(root, str(root / "filled.db"), args.history)
            for r in range(args.rounds):
                for with_readers in ((False, True) if r % 2 == 0 else (True, False)):
                    if args.postgres:
                        name = f"{template}_{len(made)}"
                        _pg(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                        made.append(name)
                        db = _pg_url(name)
                    else:
                        db = str(root / f"round{r}-{int(with_readers)}.db")
                        for suffix in ("", "-wal"):
                            if Path(f"{root / 'filled.db'}{suffix}").exists():
                                shutil.copy(f"{root / 'filled.db'}{suffix}", f"{db}{suffix}")
                    res = drain(root, db, args.jobs, args.consumers, with_readers)
                    label = "with readers" if with_readers else "alone"
                    print(f"  round {r + 1}, {label}: {res['rate']:,.0f} jobs/s", flush=True)
                    rows.append((label, res))
        finally:
            for name in reversed(made):
                _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print("\n| drain | jobs/s | run-to-ack p50 ms | p99 ms | longest gap between acks ms | machine CPU busy |"
          "\n|---|---|---|---|---|---|")
    for label, res in rows:
        print(f"| {label} | {res['rate']:,.0f} | {res['run_ack_p50']:.1f} | {res['run_ack_p99']:.1f} | "
              f"{res['max_gap']:.0f} | {res['machine_busy']:.0%} of {os.cpu_count()} cores |")
    print("\n| reader | runs | median s | max s | its CPU s, median (the page: the server's, per drain) |"
          "\n|---|---|---|---|---|")
    merged: dict[str, list[float]] = {}
    for _, res in rows:
        for name, values in res["readers"].items():
            merged.setdefault(name, []).extend(values)
    for name, values in sorted(merged.items()):
        if name.startswith("cpu:") or name == "page errors":
            continue
        cpu = merged.get(f"cpu:{name}")
        used = f"{percentile(cpu, 50):.2f}" if cpu else "–"
        print(f"| {name} | {len(values)} | {percentile(values, 50):.2f} | {max(values):.2f} | {used} |")
    alone = [r["rate"] for label, r in rows if label == "alone"]
    looked = [r["rate"] for label, r in rows if label != "alone"]
    ratio = (sum(looked) / len(looked)) / (sum(alone) / len(alone)) if alone and looked and sum(alone) else 0.0
    print(f"\ndrain with readers / alone: {ratio:.2f}x (target >= 0.90x: {'met' if ratio >= 0.9 else 'missed'}); "
          f"page errors: {len(merged.get('page errors', []))}")


if __name__ == "__main__":
    main()
