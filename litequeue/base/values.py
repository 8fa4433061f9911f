"""The values that travel through a job's life: a row to write, a claim, what a running job
collected, and how it ended. Plain data; :mod:`litequeue.jobs` writes them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from litequeue.base.states import AttemptOutcome, JobStatus


@dataclass
class JobOptions:
    """What litequeue adds to a job beyond Huey's message: given to ``app.enqueue(task,
    tags=..., ...)``, to ``task.s(...).with_options(...)``, or as ``@app.task(tags=...,
    unique=...)`` defaults; carried to the job's :class:`NewJob` and written by
    :func:`litequeue.jobs.enqueue.enqueue`."""

    #: labels to list, count, retry, cancel and purge jobs by (``site:acme``)
    tags: tuple[str, ...] = ()
    #: ids of jobs that must succeed before this one is queued (it waits meanwhile)
    depends_on: tuple[str, ...] = ()
    #: when a dependency fails for good: "cancel" this job (the default) or "run" it anyway
    on_dependency_failure: str = "cancel"
    #: while a job with this key waits, is queued or runs (or finished less than
    #: ``unique_for`` seconds ago), enqueueing again returns that job instead
    unique_key: str | None = None
    unique_for: float | None = None
    #: the batch the job belongs to
    batch_id: str | None = None


@dataclass
class NewJob:
    """A row to write to the queue (or schedule) and the ledger."""

    id: str
    task: str
    queue: str
    priority: int
    data: bytes
    eta: float | None = None
    crash_cap: int = 3
    args: str = "[]"
    kwargs: str = "{}"
    parent_id: str | None = None
    retried_from: str | None = None
    #: a further attempt of a job the ledger already has (a retry): no new ledger row
    retry: bool = False
    #: a pipeline step not enqueued yet: a ledger row only
    waiting: bool = False
    #: the job works on a file of a plugin (the inbox): its observers look at it when it ends
    has_file: bool = False
    #: enqueued through Huey's enqueue: goes to the ready queue even with a future ETA, as in
    #: Huey (the worker that takes it puts it on the schedule); the ledger says ``scheduled``
    on_queue: bool = False
    #: put on the schedule by Huey (``add_to_schedule``): waits there even if already due,
    #: until the scheduler (or ``read_schedule``) takes it
    on_schedule: bool = False
    #: tags, dependencies, unique key, batch (None: none of them)
    options: JobOptions | None = None
    #: called (inside the transaction) with the id of the job holding this job's unique key
    #: when that job is returned instead of writing this one
    on_duplicate: Callable[[str], None] | None = None
    #: the W3C traceparent of the span that enqueued it (None: not traced)
    trace: str | None = None


@dataclass
class Claim:
    """A job a consumer has claimed: its queue row stays until the ack."""

    row_id: int
    job_id: str
    queue: str
    priority: int
    data: bytes
    crash_cap: int
    attempt: int = 1
    claimed_at: float = 0.0
    #: False when no revocation existed at claim time: Huey's per-job revoke reads are skipped
    revocable: bool = True
    #: a worker died holding this job before: a thread consumer runs it alone
    suspect: bool = False
    has_file: bool = False
    #: the queue row's ``crashes`` when claimed: a recovery since (which counts one more)
    #: makes any later claim of the row another claim, even by the same holder
    crashes: int = 0
    #: the W3C traceparent the job was enqueued under (its ``send`` span), if traced
    trace: str | None = None
    #: claimed ahead (prefetched) and not yet recorded ``running``: the ledger still says
    #: ``queued`` and has no attempt for it; its start is written, at ``started_at``, by
    #: the dispatcher's next round or by its ack (:func:`litequeue.jobs.claim.record_starts`)
    pending_start: bool = False
    #: claimed ahead, begun, and taken back (its holder presumed dead) before its start was
    #: written: the ledger holds no attempt for this run, and its outcome is dropped
    start_refused: bool = False
    #: when a worker took it (a pending start's start time); 0.0 until then
    started_at: float = 0.0
    #: when it became ready to run (its queue row's ``enqueued_at``: the enqueue, or the
    #: moment its ETA moved it from the schedule), for the wait it is counted with
    due_at: float = 0.0


@dataclass
class Unit:
    """Writes collected while one job runs; ``ack`` commits them with its outcome."""

    job_id: str
    revocable: bool = True
    jobs: list[NewJob] = field(default_factory=list)
    results: list[tuple[str, bytes]] = field(default_factory=list)
    signals: set[str] = field(default_factory=set)
    value: Any = None
    exception: BaseException | None = None
    has_file: bool = False
    #: the task's own code is running: what it enqueues is written at once, as in Huey
    #: (only what Huey enqueues after it, retries and pipeline steps, waits for the ack)
    in_body: bool = False
    #: what the job did to batches (open, add members, seal), in order: written by its ack
    #: if it succeeded, dropped otherwise (see litequeue.engine.batches)
    batch_ops: list[tuple[str, Any]] = field(default_factory=list)
    #: its ack enqueued batch members or callbacks: the consumer rings its doorbell
    rings: bool = False

    def defer_batch_members(self, jobs: Sequence[NewJob]) -> bool:
        """Batch members enqueued while this job runs wait for its ack, with the rest of what
        it did to batches (see litequeue.engine.batches). False if ``jobs`` join no batch."""
        if not any(j.options is not None and j.options.batch_id for j in jobs):
            return False
        self.batch_ops.extend(("job", job) for job in jobs)
        return True


@dataclass(frozen=True)
class Usage:
    """What one attempt used (:mod:`litequeue.base.usage` measures it)."""

    #: user plus system CPU time: the worker thread's, or the worker process's
    cpu_seconds: float
    #: the highest resident memory seen while it ran (None where /proc cannot tell)
    peak_rss_bytes: int | None
    #: whose memory that is: "job" (a process worker, reset per attempt) or "consumer"
    #: (a thread worker: the consumer process's high-water mark while the attempt ran)
    rss_scope: str


@dataclass
class Finished:
    """How one claimed job ended, ready to be acknowledged."""

    claim: Claim
    task: str
    status: JobStatus
    outcome: AttemptOutcome
    started_at: float
    finished_at: float
    error: str | None = None
    traceback: str | None = None
    result: str | None = None
    unit: Unit | None = None
    #: what the attempt used, written by its ack with its outcome (None: not measured)
    usage: Usage | None = None

    @property
    def duration(self) -> float:
        return max(0.0, self.finished_at - self.started_at)


@dataclass
class NewBatch:
    """A batch to open: a group of jobs whose ``on_complete`` job is enqueued once every
    member has finished, and whose ``on_failure`` job is too if any did not succeed."""

    id: str
    app: str
    name: str
    parent_id: str | None = None
    on_complete: NewJob | None = None
    on_failure: NewJob | None = None
