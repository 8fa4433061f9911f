"""The peewee models of the four tables Huey's ``SqlStorage`` knows: lq_kv, lq_schedule,
lq_ready and lq_counter.

Huey's SqlStorage runs its key/value store, counters and locks through the ``KV`` and
``Counter`` models, and ``drop_tables`` drops all four. The queue and schedule are written
with SQL by the writer files in :mod:`litequeue.jobs`; the schema itself is
:mod:`litequeue.store.migrations`'.
"""

from __future__ import annotations

import peewee as pw
from huey.contrib.sql_huey import BytesBlobField


def huey_models(db: pw.Database) -> tuple[type[pw.Model], ...]:
    """(KV, Schedule, Ready, Counter) on ``db``, in the order SqlStorage assigns them to
    ``KV, Schedule, Task, Counter``."""

    class Base(pw.Model):
        class Meta:
            database = db

    class KV(Base):
        queue = pw.CharField()
        key = pw.CharField()
        value = BytesBlobField()

        class Meta:
            table_name = "lq_kv"
            primary_key = pw.CompositeKey("queue", "key")

    class Schedule(Base):
        """Jobs with an ETA in the future (delayed jobs and retries)."""

        id = pw.AutoField()
        app = pw.CharField()
        queue = pw.CharField()
        priority = pw.IntegerField(default=0)
        job_id = pw.CharField()
        data = BytesBlobField()
        eta = pw.DoubleField()
        crash_cap = pw.IntegerField(default=3)
        has_file = pw.IntegerField(default=0, constraints=[pw.SQL("DEFAULT 0")])

        class Meta:
            table_name = "lq_schedule"
            indexes = ((("app", "eta"), False),)

    class Ready(Base):
        """Jobs ready to run; ``claimed_by`` is set while a consumer holds one."""

        id = pw.AutoField()
        app = pw.CharField()
        queue = pw.CharField()
        priority = pw.IntegerField(default=0)
        job_id = pw.CharField()
        data = BytesBlobField()
        crash_cap = pw.IntegerField(default=3)
        #: how often a worker died holding this job: such a job runs alone (see litequeue.jobs.claim)
        crashes = pw.IntegerField(default=0, constraints=[pw.SQL("DEFAULT 0")])
        enqueued_at = pw.DoubleField()
        claimed_by = pw.CharField(null=True)
        claimed_at = pw.DoubleField(null=True)
        #: the job works on a plugin's file (the inbox): its observers look when it ends
        has_file = pw.IntegerField(default=0, constraints=[pw.SQL("DEFAULT 0")])

        class Meta:
            table_name = "lq_ready"

    class Counter(Base):
        queue = pw.CharField()
        key = pw.CharField()
        value = pw.IntegerField()

        class Meta:
            table_name = "lq_counter"
            primary_key = pw.CompositeKey("queue", "key")

    return KV, Schedule, Ready, Counter
