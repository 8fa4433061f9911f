"""Where a claimed job is *run*: Huey's ``execute`` inside a unit of work, then classified.

``LiteWorker`` is a Huey ``Worker`` whose loop takes claims from a source (the consumer's
shared dispatcher in thread mode, its own claims in process mode) instead of
``huey.dequeue()``, and hands each outcome to a sink that acknowledges it.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import TYPE_CHECKING, Any, Protocol

from huey import signals as S
from huey.consumer import Worker, WorkerRecycle
from huey.exceptions import HueyException, TaskTimeout

from litequeue.base import tracing, usage
from litequeue.base.preview import preview
from litequeue.base.states import AttemptOutcome, JobStatus
from litequeue.base.values import Claim, Finished, Unit
from litequeue.engine import running
from litequeue.engine.context import JobContext, set_current_job
from litequeue.engine.exceptions import JobCancelled, WorkerRetired

if TYPE_CHECKING:
    from litequeue.app import LiteQueue

log = logging.getLogger("litequeue.worker")

#: The outcomes that set an attempt's span status to ERROR.
FAILED_OUTCOMES = (AttemptOutcome.FAILED, AttemptOutcome.RETRYING, AttemptOutcome.TIMEOUT)


class JobSource(Protocol):
    holder: str
    #: how long an idle worker waits for a job before it looks again (None: until a job or
    #: a stop wakes it; the dispatcher's workers sleep so, with no timer)
    idle_wait: float | None

    def get(self, timeout: float | None) -> Claim | None: ...


class JobSink(Protocol):
    def put(self, finished: Finished) -> None: ...

    def skip(self) -> None: ...


def describe_unrunnable(exc: BaseException, claim: Claim) -> str:
    """One line saying why a claimed payload cannot run and what to do."""
    if isinstance(exc, HueyException) and "not found in TaskRegistry" in str(exc):
        name = str(exc).split(" not found", 1)[0]
        return (f"unknown task {name!r}: the consumer's app does not register it; "
                "import the module that defines it in the consumer's APP, then retry the job")
    # one line whatever the unpickler says (some of its messages span two lines)
    return (f"payload cannot be unpickled ({type(exc).__name__}: {' '.join(str(exc).split())}); make the class it "
            "names importable by the consumer (not only in the producer's __main__), then retry")


def classify(claim: Claim, task: Any, unit: Unit, started: float) -> Finished | None:
    """Turn what Huey signalled while running ``task`` into the job's outcome.

    Returns None when the run was interrupted (the claim stays, to be released)."""
    sig = unit.signals
    exc = unit.exception
    name = type(task).__name__
    error = tb = result = None
    if exc is not None:
        error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if S.SIGNAL_INTERRUPTED in sig:
        return None
    if S.SIGNAL_REVOKED in sig:
        status, outcome, error = JobStatus.CANCELLED, AttemptOutcome.CANCELLED, "cancelled before it ran"
    elif S.SIGNAL_EXPIRED in sig:
        status, outcome, error = JobStatus.EXPIRED, AttemptOutcome.EXPIRED, "expired before it ran"
    elif S.SIGNAL_EXECUTING not in sig:
        if S.SIGNAL_CANCELED in sig:
            status, outcome = JobStatus.CANCELLED, AttemptOutcome.CANCELLED
        else:  # not due yet: Huey put it back on the schedule
            status, outcome = JobStatus.SCHEDULED, AttemptOutcome.RELEASED
    elif S.SIGNAL_COMPLETE in sig:
        status, outcome = JobStatus.SUCCEEDED, AttemptOutcome.SUCCEEDED
        result = preview(unit.value)
    elif S.SIGNAL_RATE_LIMITED in sig and S.SIGNAL_RETRYING in sig:
        # Held back by Huey's rate_limit: back on the schedule, no retry used, no attempt counted.
        status, outcome = JobStatus.SCHEDULED, AttemptOutcome.RELEASED
        error = (f"rate limited on {getattr(exc, 'key', '?')!r} (Huey rate_limit); "
                 f"tried again in {task.retry_delay or getattr(exc, 'delay', 0):.1f}s")
        tb = None
    elif S.SIGNAL_RETRYING in sig:
        status = JobStatus.RETRYING
        outcome = AttemptOutcome.TIMEOUT if S.SIGNAL_TIMEOUT in sig else AttemptOutcome.RETRYING
    elif S.SIGNAL_CANCELED in sig:
        status, outcome = JobStatus.CANCELLED, AttemptOutcome.CANCELLED
    else:
        status = JobStatus.FAILED
        outcome = AttemptOutcome.TIMEOUT if S.SIGNAL_TIMEOUT in sig else AttemptOutcome.FAILED
    if isinstance(exc, TaskTimeout) or S.SIGNAL_TIMEOUT in sig:
        error = f"timed out after {task.timeout}s"
    elif isinstance(exc, JobCancelled) and status is JobStatus.CANCELLED:
        entry = running.running(claim.job_id)
        # The note says who asked and whether the job had to be stopped; no traceback.
        error = entry.note() if entry is not None and entry.cancelled_by else str(exc)
        tb = None
    return Finished(claim, name, status, outcome, started, time.time(), error, tb, result, unit)


def load_claimed(huey: LiteQueue, claim: Claim, holder: str) -> Any:
    """The task a claimed row holds, or None after failing a payload that cannot run."""
    try:
        task = huey.deserialize_task(claim.data)
    except Exception as exc:  # noqa: BLE001 - unpickling bytes can raise anything (OverflowError, KeyError, ...)
        error = describe_unrunnable(exc, claim)
        log.error("job %s failed: %s", claim.job_id, error)
        huey.storage.fail_unclaimable(holder, claim, error)
        return None
    # A retried job reuses its original payload under a new id: the row's id wins.
    task.id = claim.job_id
    task.revoke_id = f"r:{claim.job_id}"
    return task


def execute_claim(huey: LiteQueue, claim: Claim, task: Any, timestamp: Any = None) -> tuple[Finished | None, Any]:
    """Run a claimed job through Huey's ``execute`` inside a unit of work; return its
    outcome (not yet acked; None if interrupted) and the task's value."""
    started = time.time()
    unit = huey.storage.begin_unit(claim.job_id, claim.revocable)
    unit.has_file = claim.has_file
    context = JobContext(claim.job_id, type(task).__name__, claim.queue, claim.attempt, huey)
    set_current_job(context)
    # Known to this process's cancel watcher while it runs (see engine/running.py).
    entry = running.started(claim.job_id, type(task).__name__, getattr(task, "cancel_grace", None), claim)
    span = tracing.process(claim.queue, claim.job_id, type(task).__name__, claim.attempt, claim.trace)
    try:
        try:
            huey.execute(task, timestamp)
        except Exception as exc:  # noqa: BLE001 - Huey itself failed (say, the database); keep going
            log.exception("job %s: error outside the task", claim.job_id)
            unit.exception = unit.exception or exc
        finally:
            huey.storage.end_unit()
            set_current_job(None)
        try:
            context.flush()
        except Exception:  # noqa: BLE001 - a lost progress report must not lose the job's outcome
            log.exception("job %s: could not write its last progress report", claim.job_id)
        if not entry.end():  # ended cancelled for it already; a new thread took its place
            raise WorkerRetired()
        finished = classify(claim, task, unit, started)
        if span is not None and finished is not None:
            failed = finished.outcome in FAILED_OUTCOMES
            span.outcome(finished.outcome.value, failed, unit.exception if failed else None, finished.error)
        return finished, unit.value
    finally:
        if span is not None:
            span.end()
        running.finished(claim.job_id)


class LiteWorker(Worker):
    """Runs claimed jobs one at a time; never deletes a queue row itself."""

    process_name = "Worker"

    def __init__(self, huey: LiteQueue, stop_flag: Any, consumer: Any, max_tasks: int | None = None) -> None:
        self.consumer = consumer
        self.source: JobSource | None = None
        self.sink: JobSink | None = None
        super().__init__(huey, stop_flag, 0.1, 1.0, 1.0, max_tasks=max_tasks)

    def initialize(self) -> None:
        super().initialize()
        self.source, self.sink = self.consumer.endpoints_for_worker(self)

    def shutdown(self) -> None:
        flush = getattr(self.sink, "flush", None)
        if flush is not None:
            flush()  # a process worker's last ack rides on no further claim
        if getattr(self, "pipe", None) is not None:
            tracing.flush()  # a worker process leaves by os._exit: no atexit exports its last spans
        super().shutdown()

    def loop(self, now: Any = None) -> None:
        assert self.source is not None and self.sink is not None
        claim = self.source.get(self.source.idle_wait)
        if claim is None:
            return
        finished = self.run(claim, self.source.holder)
        if finished is not None:
            self.sink.put(finished)
        else:
            self.sink.skip()
        self.task_count += 1
        if self.max_tasks and self.task_count >= self.max_tasks:
            raise WorkerRecycle()

    def run(self, claim: Claim, holder: str) -> Finished | None:
        """Run one claimed job through Huey and return its outcome (not yet acked)."""
        huey: LiteQueue = self.huey
        task = load_claimed(huey, claim, holder)
        if task is None:
            return None
        name = type(task).__name__
        log.info("job %s start task=%s queue=%s attempt=%d", claim.job_id, name, claim.queue,
                 claim.attempt, extra={"action": "start", "job_id": claim.job_id, "task": name,
                                       "queue": claim.queue, "attempt": claim.attempt})
        meter = usage.Meter(process=getattr(self, "pipe", None) is not None)
        try:
            finished, _ = execute_claim(huey, claim, task)
        finally:
            used = meter.stop()
        if finished is not None:
            finished.usage = used
            log.info("job %s end task=%s queue=%s duration=%.3fs outcome=%s", claim.job_id, name,
                     claim.queue, finished.duration, finished.status.value,
                     extra={"action": "end", "job_id": claim.job_id, "task": name,
                            "queue": claim.queue, "duration": round(finished.duration, 6),
                            "outcome": finished.status.value})
        return finished
