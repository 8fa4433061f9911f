"""Profile litequeue's hot paths and print where the time goes.

    python benchmarks/profile_litequeue.py [--jobs 20000] [--durability full|fast] [--huey]

* drain: ``--jobs`` no-op jobs are bulk-enqueued, then ``litequeue run-consumer bench_tasks
  -w 8`` runs under ``py-spy record`` until they are all done; the samples (raw collapsed
  stacks, kept under ``benchmarks/results/``) are summed per function: self and inclusive
  share of the samples, top entries printed. ``--huey`` profiles bare ``huey_consumer``
  the same way, for comparison.
* enqueue: single enqueues and one bulk ``task.map`` under pyinstrument (text report).

``--idle`` samples threads while they wait too, and prints where the worker threads spend
the drain: running a job, waiting in ``Dispatcher.get`` for the next one (that is, on the
dispatcher's commit), or elsewhere (Huey's loop, logging).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness import BIN, HERE, TASKS_DIR, Marks, workdir

RESULTS = HERE / "results"


def env_for(tmp: Path, durability: str) -> dict[str, str]:
    env = dict(os.environ, BENCH_MARKS=str(tmp / "marks"), LITEQUEUE_DB=str(tmp / "litequeue.db"),
               BENCH_HUEY_DB=str(tmp / "huey.db"), LITEQUEUE_DURABILITY=durability)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TASKS_DIR), env.get("PYTHONPATH")]))
    return env


def fill(module: str, n: int, env: dict[str, str], cwd: Path) -> None:
    code = (f"import {module} as t\n"
            "if hasattr(t, 'enqueue_bulk'):\n"
            f"    t.enqueue_bulk({n})\n"
            "else:\n"
            f"    [t.enqueue_one() for _ in range({n})]\n")
    subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, check=True)


def children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def profile_drain(name: str, consumer: list[str], module: str, jobs: int, durability: str,
                  rate: int, gil: bool, idle: bool = False) -> Path:
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"drain-{name}{'-gil' if gil else ''}{'-idle' if idle else ''}.txt"
    with workdir(None, "profile") as tmp:
        env = env_for(tmp, durability)
        fill(module, jobs, env, tmp)
        marks = Marks(tmp / "marks")
        spy = subprocess.Popen([str(BIN / "py-spy"), "record", "-r", str(rate), "-f", "raw", "-o", str(out),
                                "--threads", *(["--gil"] if gil else []), *(["--idle"] if idle else []),
                                "--", *consumer],
                               env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.monotonic()
        ok = marks.wait_count(jobs, timeout=300, poll=0.01)
        times = marks.times()
        for pid in children(spy.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        spy.wait(60)
        rate_s = (len(times) - 1) / (max(times) - min(times)) if len(times) > 1 else 0
        print(f"\n== drain {name}: {len(times)} jobs{'' if ok else ' (timed out)'}, "
              f"{rate_s:,.0f} jobs/s under the profiler, {time.monotonic() - t0:.1f} s wall; "
              f"load {os.getloadavg()[0]:.2f}; raw stacks: {out.relative_to(HERE.parent)}")
    return out


def summarize(path: Path, top: int = 25) -> None:
    """Self and inclusive sample shares per function, and per thread, from collapsed stacks."""
    self_n: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        threads[frames[0]] += n
        self_n[frames[-1]] += n
        for f in set(frames[1:]):
            incl[f] += n
    if not total:
        print("no samples")
        return
    print(f"samples: {total}\nby thread:")
    for t, n in threads.most_common(8):
        print(f"  {100 * n / total:5.1f}%  {t}")
    print("self (top):")
    for f, n in self_n.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {f}")
    print("inclusive (top, litequeue/huey/peewee frames):")
    shown = 0
    for f, n in incl.most_common():
        if any(k in f for k in ("litequeue/", "huey/", "peewee.py", "marks.py", "sqlite")):
            print(f"  {100 * n / total:5.1f}%  {f}")
            shown += 1
            if shown >= top:
                break


def worker_waits(path: Path) -> None:
    """Where litequeue's worker threads spent their samples (taken with ``--idle``)."""
    where: collections.Counter[str] = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "runtime/worker.py" not in stack:
            continue
        if "execute_claim (litequeue/runtime/worker.py" in stack:
            where["running a job"] += int(count)
        elif "get (litequeue/runtime/dispatcher.py" in stack:
            where["waiting for its next job (Dispatcher.get)"] += int(count)
        else:
            where["elsewhere (Huey's loop, logging, metering)"] += int(count)
    total = sum(where.values())
    print(f"worker threads, {total} samples:")
    for what, n in where.most_common():
        print(f"  {100 * n / max(1, total):5.1f}%  {what}")


ENQUEUE_CHILD = """
import os, time
from pyinstrument import Profiler
import bench_tasks as t
t.enqueue_one()
n = int(os.environ['N_SINGLE'])
p = Profiler(interval=0.0005)
p.start(); t0 = time.perf_counter()
for _ in range(n):
    t.enqueue_one()
single = n / (time.perf_counter() - t0); p.stop()
print(f'== single enqueue: {n} jobs, {single:,.0f} jobs/s under the profiler')
print(p.output_text(unicode=False, color=False, show_all=False))
b = int(os.environ['N_BULK'])
p = Profiler(interval=0.001)
p.start(); t0 = time.perf_counter()
t.enqueue_bulk(b)
bulk = b / (time.perf_counter() - t0); p.stop()
print(f'== bulk enqueue (task.map): {b} jobs, {bulk:,.0f} jobs/s under the profiler')
print(p.output_text(unicode=False, color=False, show_all=False))
"""


def profile_enqueue(single: int, bulk: int, durability: str) -> None:
    with workdir(None, "profile-enq") as tmp:
        env = env_for(tmp, durability) | {"N_SINGLE": str(single), "N_BULK": str(bulk)}
        subprocess.run([sys.executable, "-c", ENQUEUE_CHILD], env=env, cwd=tmp, check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=20_000)
    ap.add_argument("--durability", choices=["full", "fast"], default="full")
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    ap.add_argument("--gil", action="store_true", help="sample only the thread holding the GIL")
    ap.add_argument("--huey", action="store_true", help="also profile bare huey_consumer")
    ap.add_argument("--idle", action="store_true", help="sample waiting threads too; print where workers wait")
    ap.add_argument("--skip-drain", action="store_true")
    ap.add_argument("--skip-enqueue", action="store_true")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    print(f"load average: {os.getloadavg()}")
    if not args.skip_drain:
        path = profile_drain("litequeue", [str(BIN / "litequeue"), "run-consumer", "bench_tasks", "-w", "8"],
                             "bench_tasks", args.jobs, args.durability, args.rate, args.gil, args.idle)
        summarize(path, args.top)
        if args.idle:
            worker_waits(path)
        if args.huey:
            path = profile_drain("huey", [str(BIN / "huey_consumer"), "huey_tasks.huey", "-w", "8"],
                                 "huey_tasks", args.jobs, args.durability, args.rate, args.gil)
            summarize(path, args.top)
    if not args.skip_enqueue:
        profile_enqueue(5000, 100_000, args.durability)
    return 0


if __name__ == "__main__":
    sys.exit(main())
