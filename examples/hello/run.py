"""Enqueue a few jobs, run a consumer until the queue is empty, print the results.

    python run.py
"""

from __future__ import annotations

import subprocess
import sys

from tasks import add, shout

# Calling a task enqueues it (one SQLite transaction) and returns a handle to its result.
jobs = [add(2, 3), add(40, 2), shout("hello")]
print(f"enqueued {len(jobs)} jobs")

# A consumer normally runs for ever (`litequeue run-consumer tasks`); --burst makes it
# drain the queue and exit, which suits a demo.
subprocess.run([sys.executable, "-m", "litequeue", "-q", "run-consumer", "tasks", "--burst", "-w", "2"],
               check=True)

for job, label in zip(jobs, ["add(2, 3)", "add(40, 2)", "shout('hello')"], strict=True):
    print(f"{label} = {job.get(blocking=True, timeout=30)!r}   (job {job.id})")
