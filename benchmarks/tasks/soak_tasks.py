"""The soak's tasks (``benchmarks/soak.py``): each run appends one line to the effects log
(``$SOAK_EFFECTS``) with a single ``O_APPEND`` write, so a line is never torn or lost."""

from __future__ import annotations

import os
import random
import time

from litequeue import LiteQueue, crontab, current_job

app = LiteQueue("soak")


def effect(kind: str, extra: str = "") -> None:
    line = f"{kind} {current_job().id} {extra}".rstrip() + "\n"
    fd = os.open(os.environ["SOAK_EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@app.task()
def work(n: int) -> int:
    time.sleep(random.uniform(0, 0.03))  # a window for the kills to land mid-job
    effect("job")
    return n


@app.task()
def fanin(batch_id: str) -> None:
    effect("cb", batch_id)


@app.task()
def ingest(path: str) -> None:
    effect("in", os.path.basename(path))


@app.periodic_task(crontab())
def tick() -> None:
    effect("tick")
