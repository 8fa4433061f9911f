"""The one vocabulary of job, attempt and breaker states, shared by ledger, CLI, web and metrics."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """Where a job is in its life. A job ends in exactly one of the final four."""

    WAITING = "waiting"  # dependencies (a pipeline parent) not finished yet
    SCHEDULED = "scheduled"  # has an ETA in the future
    QUEUED = "queued"  # ready, waiting for a worker
    RUNNING = "running"  # claimed by a worker
    RETRYING = "retrying"  # an attempt failed, another one is scheduled
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    def __str__(self) -> str:
        return self.value

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED}
)
#: The final statuses' values, sorted: SQL ``IN (...)`` lists and messages ("cancelled, expired,
#: failed, succeeded").
FINAL_VALUES: tuple[str, ...] = tuple(sorted(s.value for s in FINAL_STATUSES))
#: Statuses a job can be cancelled from without stopping anything: it has not started.
NOT_STARTED_VALUES: tuple[str, ...] = (JobStatus.WAITING.value, JobStatus.SCHEDULED.value,
                                       JobStatus.QUEUED.value, JobStatus.RETRYING.value)


class AttemptOutcome(StrEnum):
    """How one attempt at running a job ended."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # raised, and no retries left
    RETRYING = "retrying"  # raised, another attempt is scheduled
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    INTERRUPTED = "interrupted"  # its worker died or was stopped mid-run
    RELEASED = "released"  # not due yet or rate limited: taken back, no attempt (the ack deletes it)

    def __str__(self) -> str:
        return self.value


class BreakerState(StrEnum):
    """Where a task's circuit breaker is (``lq_breaker.state``)."""

    CLOSED = "closed"  # its jobs run
    OPEN = "open"  # its jobs are held until the cool-down is over
    HALF_OPEN = "half-open"  # one trial job let through: its outcome closes or opens the breaker

    def __str__(self) -> str:
        return self.value
