"""``async def`` tasks: coroutines run on one event loop per process, through Huey's execute.

Huey refuses coroutine functions and runs a task's body synchronously. So ``@app.task`` on
an ``async def`` registers a small synchronous stand-in (:func:`wrap`) that hands the
coroutine to this process's event loop (a daemon thread, started on first use) and waits
for it. Everything around the body stays Huey's and litequeue's: signals, retries,
timeouts, the unit of work and its ack, the ledger.

* Thread consumer (``-k thread``): a worker thread waits while its coroutine runs on the
  loop; sync and async tasks mix freely.
* ``-k asyncio -w N``: N slots share the one loop, so N coroutines run at once (arq's
  ``max_jobs``); a slot is a thread that only waits, and a sync task still runs on its slot.
* A timeout or an enforced cancel cancels the asyncio task; a timeout's interruption
  wakes the waiting slot at once (``interrupts.task_body(waker=...)``).
* A watchdog names the job whose task keeps the loop from running for over
  :data:`defaults.LOOP_BLOCKED` seconds: one blocking call stalls every async job.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from litequeue.base import defaults
from litequeue.engine import interrupts
from litequeue.engine.context import current_job, set_async_job
from litequeue.engine.exceptions import JobCancelled
from litequeue.engine.running import running

log = logging.getLogger("litequeue.aio")


class _LoopThread:
    """This process's event loop, run forever in a daemon thread, with its watchdog."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.jobs: dict[asyncio.Task[Any], tuple[str, str]] = {}  # asyncio task -> (job id, task)
        self.beat = time.monotonic()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), name="litequeue-asyncio", daemon=True)
        self.thread.start()
        ready.wait()
        self.watchdog = threading.Thread(target=self._watch, name="litequeue-asyncio-watchdog", daemon=True)
        self.watchdog.start()

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        self.loop.run_forever()

    def _tick(self) -> None:
        self.beat = time.monotonic()

    def _watch(self) -> None:
        """Ask the loop to note the time every quarter second; a note that does not come
        for over a second means some task blocks the loop: name it, once per stall."""
        named: asyncio.Task[Any] | None = None
        while True:
            self.loop.call_soon_threadsafe(self._tick)
            time.sleep(0.25)
            stalled = time.monotonic() - self.beat
            if stalled <= defaults.LOOP_BLOCKED:
                named = None
                continue
            task = asyncio.current_task(self.loop)
            if task is None or task is named:
                continue
            named = task
            job_id, name = self.jobs.get(task, ("?", task.get_name()))
            log.warning("job %s (task %s) has blocked the event loop for %.1fs: every async job waits; "
                        "await instead, or move blocking calls to asyncio.to_thread()", job_id, name,
                        stalled, extra={"action": "loop-blocked", "job_id": job_id, "task": name})


_loop_thread: _LoopThread | None = None
_lock = threading.Lock()


def event_loop() -> _LoopThread:
    """This process's loop thread (a new one after a fork: threads do not cross it)."""
    global _loop_thread
    with _lock:
        if _loop_thread is None or _loop_thread.pid != os.getpid():
            _loop_thread = _LoopThread()
        return _loop_thread


def run_coroutine(func: Callable[..., Coroutine[Any, Any, Any]], args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> Any:
    """Run ``func(*args, **kwargs)`` on the loop and wait for its value in this thread.

    Interrupted here (a timeout) or cancelled (an enforced cancel), the asyncio task is
    cancelled and the slot returns at once, even if the coroutine ignores the cancel."""
    lt = event_loop()
    job = current_job()
    entry = running(job.id) if job is not None else None

    async def main() -> Any:
        set_async_job(job)
        me = asyncio.current_task()
        if me is not None and job is not None:
            lt.jobs[me] = (job.id, job.task)
        try:
            return await func(*args, **kwargs)
        finally:
            if me is not None:
                lt.jobs.pop(me, None)

    done = threading.Event()
    future = asyncio.run_coroutine_threadsafe(main(), lt.loop)
    future.add_done_callback(lambda _: done.set())
    if entry is not None:
        entry.future = future
    with interrupts.task_body(waker=done.set):
        try:
            while not done.wait(1.0):  # an interruption lands between the waits
                pass
        except BaseException:
            future.cancel()
            raise
    try:
        return future.result()
    except concurrent.futures.CancelledError:
        raise JobCancelled(entry.note() if entry is not None else "cancelled") from None


def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
    """What Huey registers for a task function: for ``async def``, a synchronous stand-in
    that runs the coroutine (:func:`run_coroutine`); for a plain function, the function
    with its body marked as interruptible by an enforced cancel."""
    if inspect.iscoroutinefunction(func):
        @functools.wraps(func)
        def run_async(*args: Any, **kwargs: Any) -> Any:
            return run_coroutine(func, args, kwargs)

        run_async.is_async = True  # type: ignore[attr-defined]
        return run_async

    @functools.wraps(func)
    def run_sync(*args: Any, **kwargs: Any) -> Any:
        with interrupts.task_body():
            return func(*args, **kwargs)

    return run_sync
