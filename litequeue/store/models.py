"""The ledger's tables (peewee), living in the same database as the queue.

Models are made per database by :func:`make_ledger`, so two apps on two files can live in
one process (tests do). Times are float seconds since the epoch, UTC. The tables are made
by :mod:`litequeue.store.migrations`: a change here needs a migration there.
"""

from __future__ import annotations

from dataclasses import dataclass

import peewee as pw


@dataclass(frozen=True)
class Ledger:
    """The ledger's model classes, bound to one database."""

    db: pw.Database
    Meta: type[pw.Model]
    Job: type[pw.Model]
    Attempt: type[pw.Model]
    Consumer: type[pw.Model]
    PeriodicRun: type[pw.Model]
    Event: type[pw.Model]
    QueueState: type[pw.Model]
    Finished: type[pw.Model]
    InboxFile: type[pw.Model]
    Batch: type[pw.Model]
    #: tags, dependencies and unique keys (see ``make_options_models``)
    JobTag: type[pw.Model]
    Dependency: type[pw.Model]
    DependencyWait: type[pw.Model]
    Unique: type[pw.Model]

    @property
    def models(self) -> list[type[pw.Model]]:
        return [
            self.Meta, self.Job, self.Attempt, self.Consumer, self.PeriodicRun,
            self.Event, self.QueueState, self.Finished, self.InboxFile, self.Batch,
            self.JobTag, self.Dependency, self.DependencyWait, self.Unique,
        ]


def make_ledger(db: pw.Database) -> Ledger:
    class Base(pw.Model):
        class Meta:
            database = db

    class Meta(Base):
        key = pw.CharField(primary_key=True)
        value = pw.TextField()

        class Meta:
            table_name = "lq_meta"

    class Job(Base):
        """One row per job: what it is, where it is in its life, how it ended."""

        seq = pw.AutoField()  # keyset pagination order
        id = pw.CharField(unique=True)
        app = pw.CharField()
        task = pw.CharField()
        queue = pw.CharField()
        priority = pw.IntegerField(default=0)
        status = pw.CharField()
        args = pw.TextField(default="[]")  # redacted JSON preview
        kwargs = pw.TextField(default="{}")
        payload = pw.BlobField(null=True)  # original message, so retry needs no unpickling
        enqueued_at = pw.DoubleField()
        eta = pw.DoubleField(null=True)
        started_at = pw.DoubleField(null=True)
        finished_at = pw.DoubleField(null=True)
        updated_at = pw.DoubleField()
        attempts = pw.IntegerField(default=0)
        crash_cap = pw.IntegerField(default=3)
        crashes = pw.IntegerField(default=0)
        worker = pw.CharField(null=True)
        error = pw.TextField(null=True)
        traceback = pw.TextField(null=True)
        result = pw.TextField(null=True)  # JSON preview
        parent_id = pw.CharField(null=True)
        retried_from = pw.CharField(null=True)
        #: the job this one was retried as (a job is retried once; retry that one next)
        retried_as = pw.CharField(null=True)
        #: the job works on a plugin's file (the inbox)
        has_file = pw.IntegerField(default=0, constraints=[pw.SQL("DEFAULT 0")])
        progress_done = pw.DoubleField(null=True)
        progress_total = pw.DoubleField(null=True)
        progress_message = pw.TextField(null=True)
        progress_at = pw.DoubleField(null=True)
        #: the batch the job is a member of (litequeue.engine.batches)
        batch_id = pw.CharField(null=True)
        trace = pw.CharField(null=True)  # W3C traceparent of the span that enqueued it

        class Meta:
            table_name = "lq_job"
            # Every index is made by the migrations (on SQLite: only ``id`` and partial ones,
            # litequeue.store.job_indexes), so enqueueing a job writes as few pages as it can.

    class Attempt(Base):
        """One row per attempt at running a job."""

        id = pw.AutoField()
        job_id = pw.CharField()
        number = pw.IntegerField()
        consumer_id = pw.CharField(null=True)
        started_at = pw.DoubleField()
        finished_at = pw.DoubleField(null=True)
        outcome = pw.CharField()
        error = pw.TextField(null=True)
        cpu_seconds = pw.DoubleField(null=True)  # user + system CPU time of the attempt
        peak_rss_bytes = pw.BigIntegerField(null=True)  # highest resident memory seen while it ran
        rss_scope = pw.CharField(null=True)  # "job" (a process worker) or "consumer" (a thread worker)

        class Meta:
            table_name = "lq_attempt"
            indexes = ((("job_id", "number"), True),)

    class Consumer(Base):
        """One row per consumer process: who it is, how to tell it is alive."""

        id = pw.CharField(primary_key=True)
        hostname = pw.CharField()
        pid = pw.IntegerField()
        boot_id = pw.CharField()
        lock_path = pw.TextField(null=True)
        queues = pw.TextField()  # comma-separated, "" = every queue
        concurrency = pw.IntegerField()
        worker_type = pw.CharField()
        started_at = pw.DoubleField()
        heartbeat_at = pw.DoubleField()
        stopped_at = pw.DoubleField(null=True)
        status = pw.CharField()  # running, stopping, stopped, dead
        jobs_done = pw.IntegerField(default=0, constraints=[pw.SQL("DEFAULT 0")])
        lease = pw.DoubleField(null=True)  # seconds without a heartbeat before others take over
        requested = pw.CharField(null=True)  # quiet or stop, asked from the status page or CLI
        obeyed = pw.CharField(null=True)  # what the consumer did about it

        class Meta:
            table_name = "lq_consumer"

    class PeriodicRun(Base):
        """A periodic task's run, keyed by its schedule slot so it fires once."""

        id = pw.AutoField()
        task = pw.CharField()
        slot = pw.CharField()
        job_id = pw.CharField()
        created_at = pw.DoubleField()

        class Meta:
            table_name = "lq_periodic_run"
            indexes = ((("task", "slot"), True),)

    class Event(Base):
        """Actions people and tools took (retry, cancel, pause, purge, prune)."""

        id = pw.AutoField()
        at = pw.DoubleField()
        action = pw.CharField()
        job_id = pw.CharField(null=True)
        queue = pw.CharField(null=True)
        detail = pw.TextField(null=True)
        actor = pw.CharField(null=True)

        class Meta:
            table_name = "lq_event"

    class QueueState(Base):
        queue = pw.CharField(primary_key=True)
        paused = pw.BooleanField(default=False)
        paused_until = pw.DoubleField(null=True)  # None with paused = until resumed
        updated_at = pw.DoubleField()

        class Meta:
            table_name = "lq_queue_state"

    class Finished(Base):
        """Counters of finished jobs that survive pruning (for metrics)."""

        queue = pw.CharField()
        task = pw.CharField()
        outcome = pw.CharField()
        count = pw.IntegerField(default=0, constraints=[pw.SQL("DEFAULT 0")])
        duration_sum = pw.DoubleField(default=0.0, constraints=[pw.SQL("DEFAULT 0")])

        class Meta:
            table_name = "lq_finished"
            primary_key = pw.CompositeKey("queue", "task", "outcome")

    class InboxFile(Base):
        """A file taken from a watched inbox and the job it became."""

        id = pw.AutoField()
        job_id = pw.CharField(null=True, index=True)
        inbox = pw.TextField()
        name = pw.TextField()  # original name, relative to the inbox
        path = pw.TextField()  # where the file is now
        size = pw.IntegerField()
        sha256 = pw.CharField(null=True, index=True)
        state = pw.CharField()  # processing, done, failed, duplicate, missing
        # the file's own folder under the inbox's processing folder (litequeue.inbox.layout)
        token = pw.CharField(null=True, index=True)
        taken_at = pw.DoubleField()
        settled_at = pw.DoubleField(null=True)

        class Meta:
            table_name = "lq_inbox_file"

    class Batch(Base):
        """A group of jobs whose fan-in callback runs once every member has finished."""

        id = pw.CharField(primary_key=True)
        app = pw.CharField()
        name = pw.TextField()
        #: the batch this one is a member of (nested batches)
        parent_id = pw.CharField(null=True)
        total = pw.IntegerField(default=0)
        succeeded = pw.IntegerField(default=0)
        #: members that ended without succeeding: failed, cancelled or expired
        failed = pw.IntegerField(default=0)
        sealed = pw.IntegerField(default=0)
        on_complete_id = pw.CharField(null=True)
        on_complete_payload = pw.BlobField(null=True)
        on_complete_meta = pw.TextField(null=True)
        on_failure_id = pw.CharField(null=True)
        on_failure_payload = pw.BlobField(null=True)
        on_failure_meta = pw.TextField(null=True)
        created_at = pw.DoubleField()
        sealed_at = pw.DoubleField(null=True)
        #: every member finished: the callbacks were enqueued in that same transaction
        finished_at = pw.DoubleField(null=True)
        #: the on_complete job finished too (or there is none): what a parent batch waits for
        completed_at = pw.DoubleField(null=True)
        failure_fired_at = pw.DoubleField(null=True)

        class Meta:
            table_name = "lq_batch"

    return Ledger(db, Meta, Job, Attempt, Consumer, PeriodicRun, Event, QueueState, Finished, InboxFile, Batch,
                  *make_options_models(Base))


def make_options_models(base: type[pw.Model]) -> tuple[type[pw.Model], ...]:
    """Tags, dependencies and unique keys of jobs (migration 4)."""

    class JobTag(base):  # type: ignore[misc,valid-type]
        tag = pw.CharField()
        job_id = pw.CharField(index=True)

        class Meta:
            table_name = "lq_job_tag"
            primary_key = pw.CompositeKey("tag", "job_id")

    class Dependency(base):  # type: ignore[misc,valid-type]
        job_id = pw.CharField()
        depends_on = pw.CharField()
        outcome = pw.CharField(null=True)  # the dependency's final status, once counted

        class Meta:
            table_name = "lq_dependency"
            primary_key = pw.CompositeKey("job_id", "depends_on")

    class DependencyWait(base):  # type: ignore[misc,valid-type]
        job_id = pw.CharField(primary_key=True)
        remaining = pw.IntegerField()
        run_anyway = pw.IntegerField(default=0)

        class Meta:
            table_name = "lq_dependency_wait"

    class Unique(base):  # type: ignore[misc,valid-type]
        key = pw.CharField(primary_key=True)
        job_id = pw.CharField()
        unique_for = pw.DoubleField()
        held_until = pw.DoubleField(null=True)  # NULL while the job has not ended
        created_at = pw.DoubleField()

        class Meta:
            table_name = "lq_unique"

    return JobTag, Dependency, DependencyWait, Unique
