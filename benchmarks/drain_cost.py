"""CPU time a consumer spends per drained job, for comparing two checkouts on a busy machine.

    python benchmarks/drain_cost.py [--jobs 5000] [--rounds 5] [--kind thread|process]
        [--python OTHER_VENV/bin/python ...]

The drain rate of ``run.py`` is wall-clock time, which other work on a shared machine
changes by tens of percent from one repeat to the next. The CPU time (user + system) the
consumer's process tree uses to drain N queued no-op jobs moves much less: this measures
both, for each interpreter given (each a venv with its own litequeue checkout installed;
the first is this one's), alternating A B A B ... round by round, and prints the median
and range of each, with the load average before each round. The CPU time counts from the
first job's start (interpreter start-up and imports left out) to the last job's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harness import CLK_TCK, TASKS_DIR, Consumer, Marks, tree_ticks, workdir


def one(python: str, jobs: int, kind: str) -> tuple[float, float]:
    """(CPU ms per 1,000 jobs, jobs/s) of one drain of ``jobs`` queued no-op jobs."""
    with workdir(None, "drain-cost") as tmp:
        env = dict(os.environ, LITEQUEUE_DB=str(tmp / "litequeue.db"), BENCH_MARKS=str(tmp / "marks"),
                   BENCH_JOB="noop", LITEQUEUE_DURABILITY="full",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(TASKS_DIR), os.environ.get("PYTHONPATH")])))
        subprocess.run([python, "-c", f"import bench_tasks; bench_tasks.enqueue_bulk({jobs})"], env=env,
                       cwd=tmp, check=True)
        marks = Marks(tmp / "marks")
        argv = [python, "-m", "litequeue", "run-consumer", "bench_tasks", "-w", "8" if kind == "thread" else "4"]
        if kind == "process":
            argv += ["-k", "process"]
        consumer = Consumer(argv, env, tmp)
        try:
            deadline = time.monotonic() + 60 + jobs / 50
            start: tuple[int, int] | None = None  # (jobs run, ticks) once the first job ran
            while (done := marks.count()) < jobs:
                if time.monotonic() > deadline or consumer.proc.poll() is not None:
                    raise RuntimeError(f"drain stopped at {done} of {jobs} (see {tmp / 'consumer.log'})")
                if start is None and done:
                    start = (done, tree_ticks(consumer.pid))  # start-up and imports left out
                time.sleep(0.005)
            ticks = tree_ticks(consumer.pid)
            first, at = start or (0, 0)
            times = marks.times()
            return 1e6 * (ticks - at) / CLK_TCK / (jobs - first), (jobs - 1) / (max(times) - min(times))
        finally:
            consumer.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--kind", choices=("thread", "process"), default="thread")
    ap.add_argument("--python", action="append", default=[], help="another checkout's venv python (repeatable)")
    args = ap.parse_args(argv)
    pythons = [sys.executable, *args.python]
    results: dict[str, list[tuple[float, float]]] = {p: [] for p in pythons}
    for r in range(args.rounds):
        for python in pythons:
            load = Path("/proc/loadavg").read_text().split()[0]
            cpu, rate = one(python, args.jobs, args.kind)
            results[python].append((cpu, rate))
            print(f"round {r + 1} {python}: {cpu:.0f} CPU ms per 1,000 jobs, {rate:,.0f} jobs/s (load {load})",
                  flush=True)
    print(f"\n{args.jobs} no-op jobs, {args.kind} consumer, {args.rounds} rounds: median (min-max)")
    for python, rows in results.items():
        cpus, rates = [c for c, _ in rows], [r for _, r in rows]
        print(f"{python}: {statistics.median(cpus):.0f} ({min(cpus):.0f}-{max(cpus):.0f}) CPU ms per 1,000 jobs, "
              f"{statistics.median(rates):,.0f} ({min(rates):,.0f}-{max(rates):,.0f}) jobs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
