"""Quiet when idle (issue 23): a consumer's idle worker threads sleep until the dispatcher
hands them a job or the consumer stops; no timer wakes them (read from the kernel's count of
each thread's voluntary context switches, /proc/self/task/TID/status)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from litequeue import LiteQueue
from tests.conftest import running_consumer, wait_for, wait_job


def wake_ups(thread: threading.Thread) -> int:
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("voluntary_ctxt_switches")))


def test_idle_worker_threads_sleep_until_a_job_or_the_stop(tmp_path):
    app = LiteQueue("idle", db=tmp_path / "idle.db")

    @app.task()
    def work(i: int) -> int:
        return i

    with running_consumer(app, workers=4):
        workers = wait_for(lambda: [t for t in threading.enumerate() if t.name.startswith("Worker-")] or None,
                           10, what="the worker threads")
        assert len(workers) == 4
        wait_job(app, work(1).id, "succeeded")  # every thread has started and gone idle
        time.sleep(0.5)
        before = {t.native_id: wake_ups(t) for t in workers}
        time.sleep(2.0)  # a worker on a 0.5 s timer wakes 4 times here
        woke = {t.native_id: wake_ups(t) - before[t.native_id] for t in workers}
        assert all(n <= 1 for n in woke.values()), woke
        wait_job(app, work(2).id, "succeeded")  # and a job still reaches one at once
    assert not any(t.is_alive() for t in workers), "the stop woke every idle worker"
