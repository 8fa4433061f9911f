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


def test_the_idle_main_loop_wakes_for_its_health_check_not_ten_times_a_second(tmp_path):
    """Huey's main loop waits on its stop flag 0.1 s at a time: ten wake-ups a second
    while idle. The consumer's sleeps until its next health check (1 s), a signal or a
    stop; a stop from another thread still ends it (``running_consumer`` joins it)."""
    app = LiteQueue("idle", db=tmp_path / "idle.db")

    @app.task()
    def work(i: int) -> int:
        return i

    with running_consumer(app, workers=2):
        (main,) = [t for t in threading.enumerate() if t.name == "test-consumer"]
        wait_job(app, work(1).id, "succeeded")
        time.sleep(0.5)
        before = wake_ups(main)
        time.sleep(3.0)  # Huey's loop wakes 30 times here
        woke = wake_ups(main) - before
        print(f"\nthe main loop woke {woke} times in 3 s")
        assert woke <= 9, woke
