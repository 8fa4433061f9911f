"""The one vocabulary of job and attempt states, shared by ledger, CLI, web and metrics."""

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
#: Statuses in which a row for the job exists in the queue or the schedule.
LIVE_STATUSES = frozenset(
    {JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.RETRYING}
)


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
