"""Huey's queue on the ledger's database: claim, ack, release, dispatch, one place each.

``LiteStorage`` extends Huey's contrib ``SqlStorage`` (which runs Huey's key/value store,
counters, locks and results through peewee) and replaces its queue and schedule with
tables that never lose a job:

* a job is taken by *claiming* its ``lq_ready`` row (``claimed_by`` set to the consumer's
  id), never by deleting it;
* it leaves ``lq_ready`` only in :meth:`LiteStorage.ack`, in the same transaction that
  writes its outcome, its result and any retry or follow-up rows to queue and ledger;
* due rows move from ``lq_schedule`` to ``lq_ready`` in one transaction
  (:meth:`LiteStorage.dispatch_due`);
* a dead consumer's claims go back to ready, or to ``failed`` at the crash cap
  (:meth:`LiteStorage.recover`).

Every write that Huey would make while a worker runs a job (the result, a retry, the
next pipeline step) is collected in the job's :class:`Unit` and written by ``ack``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import peewee as pw
from huey.constants import EmptyData
from huey.contrib.sql_huey import BytesBlobField, SqlStorage

from . import dialect
from .errors import ConfigurationError, DatabaseBusyError
from .ledger.models import SCHEMA_VERSION, Ledger, make_ledger
from .status import AttemptOutcome, JobStatus


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
    #: enqueued through Huey's enqueue: goes to the ready queue even with a future ETA, as in
    #: Huey (the worker that takes it puts it on the schedule); the ledger says ``scheduled``
    on_queue: bool = False
    #: put on the schedule by Huey (``add_to_schedule``): waits there even if already due,
    #: until the scheduler (or ``read_schedule``) takes it
    on_schedule: bool = False


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
    #: the task's own code is running: what it enqueues is written at once, as in Huey
    #: (only what Huey enqueues after it, retries and pipeline steps, waits for the ack)
    in_body: bool = False


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

    @property
    def duration(self) -> float:
        return max(0.0, self.finished_at - self.started_at)


class LiteStorage(SqlStorage):
    """Huey storage whose queue rows are claimed and acknowledged, never lost."""

    def __init__(self, name: str = "litequeue", database: pw.Database | None = None,
                 create_tables: bool = True, **kwargs: Any) -> None:
        self._local = threading.local()
        super().__init__(name, database=database, create_tables=False, **kwargs)
        self.ledger: Ledger = make_ledger(self.database)
        self.is_sqlite = isinstance(self.database, pw.SqliteDatabase)
        #: set by LiteQueue: the rows a serialized task writes, and what to do after a commit
        #: that made jobs ready (ring the consumers' doorbell)
        self.describe: Callable[[bytes], list[NewJob]] | None = None
        self.committed: Callable[[], None] = lambda: None
        self.utc = True
        from .inline import InlineClaims

        #: this process's claims taken through Huey's dequeue() / read_schedule()
        self.inline = InlineClaims(self)
        if create_tables:
            self.create_tables()

    # -- schema -------------------------------------------------------------------------

    def create_models(self) -> tuple[type[pw.Model], ...]:
        db = self.database

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
            #: how often a worker died holding this job: such a job runs alone (see _claim)
            crashes = pw.IntegerField(default=0, constraints=[pw.SQL("DEFAULT 0")])
            enqueued_at = pw.DoubleField()
            claimed_by = pw.CharField(null=True)
            claimed_at = pw.DoubleField(null=True)

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

    #: SQLite: jobs per (queue, status), kept by triggers in the very transaction that
    #: changes a job's status, whichever code path does it, so ``status`` reads a handful
    #: of rows instead of counting a million. (PostgreSQL counts instead: counter rows
    #: updated by every transaction would serialise its concurrent consumers.)
    SQLITE_COUNTS = (
        "CREATE TABLE IF NOT EXISTS lq_job_count (queue TEXT NOT NULL, status TEXT NOT NULL, "
        "n INTEGER NOT NULL, PRIMARY KEY (queue, status)) WITHOUT ROWID",
        "CREATE TRIGGER IF NOT EXISTS lq_job_count_insert AFTER INSERT ON lq_job BEGIN "
        "INSERT INTO lq_job_count (queue, status, n) VALUES (NEW.queue, NEW.status, 1) "
        "ON CONFLICT (queue, status) DO UPDATE SET n = n + 1; END",
        "CREATE TRIGGER IF NOT EXISTS lq_job_count_update AFTER UPDATE OF status ON lq_job "
        "WHEN OLD.status IS NOT NEW.status BEGIN "
        "UPDATE lq_job_count SET n = n - 1 WHERE queue = OLD.queue AND status = OLD.status; "
        "INSERT INTO lq_job_count (queue, status, n) VALUES (NEW.queue, NEW.status, 1) "
        "ON CONFLICT (queue, status) DO UPDATE SET n = n + 1; END",
        "CREATE TRIGGER IF NOT EXISTS lq_job_count_delete AFTER DELETE ON lq_job BEGIN "
        "UPDATE lq_job_count SET n = n - 1 WHERE queue = OLD.queue AND status = OLD.status; END",
    )

    #: Partial indexes: claim queries only ever look at unclaimed rows.
    INDEXES = (
        "CREATE INDEX IF NOT EXISTS lq_ready_claim_q ON lq_ready "
        "(app, queue, priority DESC, id) WHERE claimed_by IS NULL",
        "CREATE INDEX IF NOT EXISTS lq_ready_claim_any ON lq_ready "
        "(app, priority DESC, id) WHERE claimed_by IS NULL",
        "CREATE INDEX IF NOT EXISTS lq_ready_claimed ON lq_ready (claimed_by) "
        "WHERE claimed_by IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS lq_ready_job ON lq_ready (job_id)",
        "CREATE INDEX IF NOT EXISTS lq_ready_oldest ON lq_ready (queue, enqueued_at) "
        "WHERE claimed_by IS NULL",
        "CREATE INDEX IF NOT EXISTS lq_schedule_job ON lq_schedule (job_id)",
        "CREATE INDEX IF NOT EXISTS lq_job_parent ON lq_job (parent_id) WHERE parent_id IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS lq_job_retried_from ON lq_job (retried_from) WHERE retried_from IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS lq_job_finished ON lq_job (finished_at) WHERE finished_at IS NOT NULL",
    )

    def create_tables(self) -> None:
        """Create queue and ledger tables and stamp the schema version. Opening an existing
        database takes no write lock (so it works while another process holds it)."""
        with self.database.connection_context() if self.database.is_closed() else _null():
            if self.has_schema():
                return
            with self.write():
                self.database.create_tables(
                    [self.KV, self.Schedule, self.Task, self.Counter, *self.ledger.models],
                    safe=True,
                )
                for ddl in self.INDEXES + (self.SQLITE_COUNTS if self.is_sqlite else ()):
                    self.database.execute_sql(ddl)
                self.ledger.Meta.insert(key="schema", value=SCHEMA_VERSION).on_conflict_ignore().execute()

    def has_schema(self) -> bool:
        try:
            row = self.sql("SELECT value FROM lq_meta WHERE key = 'schema'").fetchone()
        except pw.DatabaseError:
            if not self.is_sqlite:
                self.database.rollback()  # PostgreSQL: a failed statement aborts the transaction
            return False
        return row is not None and row[0] == SCHEMA_VERSION

    def drop_tables(self) -> None:
        self.database.drop_tables([self.KV, self.Schedule, self.Task, self.Counter, *self.ledger.models])

    # -- low level ----------------------------------------------------------------------

    def sql(self, query: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement (written with ``?`` placeholders) and return the cursor."""
        return dialect.sql(self.database, query, params)

    def _param(self, query: str) -> str:
        return dialect.param(self.database, query)

    def many(self, query: str, rows: Iterable[Sequence[Any]]) -> None:
        dialect.many(self.database, query, rows)

    def write(self) -> Any:
        """A write transaction; SQLite's busy timeout waits out other writers."""
        return _BusyGuard(self.atomic())

    # -- the unit of work a running job collects ----------------------------------------

    def begin_unit(self, job_id: str, revocable: bool = True) -> Unit:
        unit = Unit(job_id, revocable)
        self._local.unit = unit
        return unit

    def end_unit(self) -> Unit | None:
        unit = getattr(self._local, "unit", None)
        self._local.unit = None
        return unit

    @property
    def unit(self) -> Unit | None:
        return getattr(self._local, "unit", None)

    @property
    def deferring(self) -> Unit | None:
        """The running job's unit while its writes wait for its ack (not while its own
        code runs)."""
        unit = getattr(self._local, "unit", None)
        return None if unit is None or unit.in_body else unit

    # -- enqueue ------------------------------------------------------------------------

    def write_jobs(self, jobs: Sequence[NewJob], now: float | None = None) -> None:
        """Write queue (or schedule) rows and ledger rows for ``jobs`` in one transaction.

        Inside a running job the rows go to its unit instead and are written by its ack.
        """
        unit = self.deferring
        if unit is not None:
            unit.jobs.extend(jobs)
            return
        with self.write():
            self.insert_jobs(jobs, time.time() if now is None else now)

    def insert_jobs(self, jobs: Sequence[NewJob], now: float) -> None:
        """Insert queue/schedule and ledger rows; call inside :meth:`write`."""
        ready, scheduled, ledger_new, ledger_retry = [], [], [], []
        for job in jobs:
            later = job.eta is not None and (job.eta > now or job.on_schedule)
            if not job.waiting:
                if later and not job.on_queue:
                    scheduled.append((self.name, job.queue, job.priority, job.id, job.data,
                                      job.eta, job.crash_cap))
                else:
                    ready.append((self.name, job.queue, job.priority, job.id, job.data,
                                  job.crash_cap, now))
            if job.retry:
                status = JobStatus.RETRYING
                ledger_retry.append((status.value, job.eta, now, job.id))
            else:
                if job.waiting:
                    status = JobStatus.WAITING
                elif later:
                    status = JobStatus.SCHEDULED
                else:
                    status = JobStatus.QUEUED
                ledger_new.append((job.id, self.name, job.task, job.queue, job.priority,
                                   status.value, job.args, job.kwargs, job.data, now, job.eta,
                                   now, job.parent_id, job.retried_from, job.crash_cap))
        self.many("INSERT INTO lq_ready (app, queue, priority, job_id, data, crash_cap, "
                  "enqueued_at) VALUES (?, ?, ?, ?, ?, ?, ?)", ready)
        self.many("INSERT INTO lq_schedule (app, queue, priority, job_id, data, eta, crash_cap) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)", scheduled)
        # A waiting pipeline step already has its row: enqueueing it updates the status.
        self.many(
            "INSERT INTO lq_job (id, app, task, queue, priority, status, args, kwargs, payload, "
            "enqueued_at, eta, updated_at, parent_id, retried_from, crash_cap, attempts, crashes) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0) "
            "ON CONFLICT (id) DO UPDATE SET status = excluded.status, eta = excluded.eta, "
            "enqueued_at = excluded.enqueued_at, updated_at = excluded.updated_at, "
            "payload = excluded.payload, parent_id = COALESCE(lq_job.parent_id, excluded.parent_id) "
            "WHERE lq_job.status = 'waiting'",
            ledger_new,
        )
        self.many("UPDATE lq_job SET status = ?, eta = ?, updated_at = ? WHERE id = ?", ledger_retry)

    # -- Huey's storage API: what Huey.enqueue / add_schedule / dequeue call ----------------

    def enqueue(self, data: bytes, priority: float | None = None) -> None:
        """Huey's enqueue: write the job (queue row + ledger row, one transaction) and ring
        the doorbell after the commit; what Huey enqueues after a running job's code (a
        retry, the next pipeline step) waits for that job's ack."""
        jobs = self._rows_for(data)
        jobs[0].on_queue = True
        self._add(jobs)

    def add_to_schedule(self, data: bytes, ts: Any) -> None:
        """Huey's add_schedule (a delayed job, a retry with a delay, a job not due yet)."""
        jobs = self._rows_for(data)
        jobs[0].eta = _epoch(ts, self.utc)
        jobs[0].on_schedule = True
        self._add(jobs)

    def _rows_for(self, data: bytes) -> list[NewJob]:
        if self.describe is None:
            raise ConfigurationError("LiteStorage writes jobs for a LiteQueue; create one with LiteQueue(...)")
        return self.describe(data)

    def _add(self, jobs: list[NewJob]) -> None:
        if self.deferring is not None:
            self.write_jobs(jobs)  # into the unit, written by the ack
            return
        if self.inline.hand_back(jobs[0]):
            self.committed()  # a job dequeue()/read_schedule() handed out, enqueued again
            return
        pending = getattr(self._local, "batch", None)
        if pending is not None:
            pending.extend(jobs)
            if len(pending) >= self._local.chunk:
                self._flush_batch()
            return
        self.write_jobs(jobs)
        self.committed()

    @contextlib.contextmanager
    def batch(self, chunk: int = 10_000) -> Iterator[None]:
        """Collect the jobs enqueued inside the block and write them ``chunk`` per
        transaction (``enqueue_many``, ``map``), ringing the doorbell once per commit."""
        if self.deferring is not None or getattr(self._local, "batch", None) is not None:
            yield  # a running job's unit or an outer batch already collects them
            return
        self._local.batch, self._local.chunk = [], chunk
        try:
            yield
            self._flush_batch()
        finally:
            self._local.batch = None

    def _flush_batch(self) -> None:
        jobs, self._local.batch = self._local.batch, []
        if jobs:
            self.write_jobs(jobs)
            self.committed()

    def dequeue(self) -> bytes | None:
        """Huey's dequeue: the next ready job, *claimed* by this process (not deleted).
        ``LiteQueue.execute`` acks it; if this process dies first, a consumer recovers it."""
        claim = self.inline.dequeue()
        return None if claim is None else claim.data

    # -- claim ---------------------------------------------------------------------------

    def claim(self, consumer_id: str, queues: Sequence[str] | None, limit: int,
              paused: Iterable[str] = (), worker: str | None = None) -> list[Claim]:
        """Claim up to ``limit`` ready jobs for ``consumer_id`` and mark them running.

        ``queues`` are served in strict order; ``None`` means every queue, highest
        priority first, then oldest. Paused queues are skipped.
        """
        if limit <= 0:
            return []
        with self.write():
            return self._claim(consumer_id, queues, limit, paused, worker)

    def ack_and_claim(self, consumer_id: str, finished: Sequence[Finished], queues: Sequence[str] | None,
                      limit: int, paused: Iterable[str] = (), isolate: str | None = None,
                      ) -> tuple[list[Finished], list[Claim]]:
        """:meth:`ack` then :meth:`claim` in ONE transaction: one commit (one fsync) per
        round for a busy consumer instead of two.

        ``isolate`` is for consumers whose workers share one process (threads), where a job
        that kills its worker kills the jobs beside it: ``"others"`` claims only jobs no
        worker died on; ``"suspect-first"`` claims one job a worker died on, alone (its
        ``suspect`` flag set), or else as ``"others"``; so a death is blamed on that job
        only. None claims any job (process workers hold one job each)."""
        if not finished and limit <= 0:
            return [], []
        with self.write():
            acked = self._ack(consumer_id, finished) if finished else []
            claims = self._claim(consumer_id, queues, limit, paused, None, isolate) if limit > 0 else []
        return acked, claims

    def _claim(self, consumer_id: str, queues: Sequence[str] | None, limit: int,
               paused: Iterable[str], worker: str | None, isolate: str | None = None) -> list[Claim]:
        paused = set(paused)
        now = time.time()
        lock = " FOR UPDATE SKIP LOCKED" if not self.is_sqlite else ""
        if isolate == "suspect-first":
            suspects = self._claim(consumer_id, queues, 1, paused, worker, "suspect")
            if suspects:
                return suspects
            isolate = "others"
        crashed = {None: "", "others": " AND crashes = 0", "suspect": " AND crashes > 0"}[isolate]
        claims: list[Claim] = []
        if queues:
            for queue in queues:
                if queue in paused:
                    continue
                claims.extend(self._claim_rows(
                    "UPDATE lq_ready SET claimed_by = ?, claimed_at = ? WHERE id IN ("
                    f"SELECT id FROM lq_ready WHERE app = ? AND queue = ? AND claimed_by IS NULL{crashed} "
                    f"ORDER BY priority DESC, id LIMIT ?{lock}) "
                        "RETURNING id, job_id, queue, priority, data, crash_cap, crashes",
                    (consumer_id, now, self.name, queue, limit - len(claims)), now))
                if len(claims) >= limit:
                    break
        else:
            skip = ""
            if paused:
                skip = f" AND queue NOT IN ({', '.join('?' * len(paused))})"
            claims.extend(self._claim_rows(
                "UPDATE lq_ready SET claimed_by = ?, claimed_at = ? WHERE id IN ("
                f"SELECT id FROM lq_ready WHERE app = ? AND claimed_by IS NULL{skip}{crashed} "
                f"ORDER BY priority DESC, id LIMIT ?{lock}) "
                "RETURNING id, job_id, queue, priority, data, crash_cap, crashes",
                (consumer_id, now, self.name, *sorted(paused), limit), now))
        if claims:
            self._mark_running(claims, consumer_id if worker is None else worker, now)
            if not self._revocations_exist():
                for c in claims:
                    c.revocable = False
        order = {q: i for i, q in enumerate(queues or ())}
        claims.sort(key=lambda c: (order.get(c.queue, 0), -c.priority, c.row_id))
        return claims

    def _revocations_exist(self) -> bool:
        """Any Huey revoke key (``r:<id>`` or ``rt:<task>``) at all? Two index probes."""
        return self.sql(
            "SELECT 1 FROM lq_kv WHERE queue = ? AND ((key >= 'r:' AND key < 'r;') OR "
            "(key >= 'rt:' AND key < 'rt;')) LIMIT 1", (self.name,)).fetchone() is not None

    def _claim_rows(self, query: str, params: Sequence[Any], now: float) -> list[Claim]:
        return [Claim(row_id, job_id, queue, priority, bytes(data), crash_cap, claimed_at=now,
                      suspect=crashes > 0)
                for row_id, job_id, queue, priority, data, crash_cap, crashes
                in self.sql(query, params).fetchall()]

    def _mark_running(self, claims: list[Claim], worker: str, now: float) -> None:
        by_id = {c.job_id: c for c in claims}
        marks = ", ".join("?" * len(by_id))
        rows = self.sql(
            "UPDATE lq_job SET status = 'running', started_at = ?, attempts = attempts + 1, "
            f"worker = ?, updated_at = ? WHERE id IN ({marks}) RETURNING id, attempts",
            (now, worker, now, *by_id)).fetchall()
        for job_id, attempts in rows:
            by_id[job_id].attempt = attempts
        self.many("INSERT INTO lq_attempt (job_id, number, consumer_id, started_at, outcome) "
                  "VALUES (?, ?, ?, ?, 'running') ON CONFLICT (job_id, number) DO NOTHING",
                  [(c.job_id, c.attempt, worker, now) for c in claims])

    # -- ack -------------------------------------------------------------------------------

    def ack(self, consumer_id: str, finished: Sequence[Finished]) -> list[Finished]:
        """Acknowledge finished jobs in one transaction; return those that were acked.

        For each job: its claim is deleted (fenced by ``consumer_id``: a claim taken over
        by recovery is not ours to ack), and its unit's writes, ledger row, attempt and
        counters are written. The retry and follow-up rows are written in the same
        transaction that deletes the claim, so a crash leaves a duplicate, never a loss.
        """
        if not finished:
            return []
        with self.write():
            return self._ack(consumer_id, finished)

    def _ack(self, consumer_id: str, finished: Sequence[Finished]) -> list[Finished]:
        now = time.time()
        fence = "DELETE FROM lq_ready WHERE id = ? AND claimed_by = ?"
        cur = self.database.cursor()
        cur.executemany(self._param(fence), [(i.claim.row_id, consumer_id) for i in finished])
        if cur.rowcount == len(finished):
            acked = list(finished)
        else:  # some claim was taken over (its consumer presumed dead): find which
            gone = {r[0] for r in self.sql(
                f"SELECT id FROM lq_ready WHERE id IN ({', '.join('?' * len(finished))})",
                [i.claim.row_id for i in finished]).fetchall()}
            acked = [i for i in finished if i.claim.row_id not in gone]
            # rows still present belong to someone else now: they were not deleted
        jobs = [job for item in acked if item.unit for job in item.unit.jobs]
        if jobs:
            self.insert_jobs(jobs, now)
        results = [(self.name, key, value) for item in acked if item.unit
                   for key, value in item.unit.results]
        self._put_many(results)
        self.many(
            "UPDATE lq_job SET status = ?, finished_at = ?, error = ?, traceback = ?, "
            "result = ?, updated_at = ? WHERE id = ?",
            [(i.status.value, i.finished_at if i.status.is_final else None, i.error,
              i.traceback, i.result, now, i.claim.job_id) for i in acked])
        self.many(
            "UPDATE lq_attempt SET finished_at = ?, outcome = ?, error = ? "
            "WHERE job_id = ? AND number = ?",
            [(i.finished_at, i.outcome.value, i.error, i.claim.job_id, i.claim.attempt)
             for i in acked])
        # Not due yet (Huey put it on the schedule): taking it was no attempt at running it.
        early = [(i.claim.job_id, i.claim.attempt) for i in acked if i.outcome is AttemptOutcome.RELEASED]
        if early:
            self.many("DELETE FROM lq_attempt WHERE job_id = ? AND number = ?", early)
            self.many("UPDATE lq_job SET attempts = attempts - 1, "
                      "started_at = CASE WHEN attempts = 1 THEN NULL ELSE started_at END "
                      "WHERE id = ? AND attempts = ?", early)
        self._count_finished(acked)
        return acked

    def _count_finished(self, items: Sequence[Finished]) -> None:
        tally: Tally[tuple[str, str, str]] = Tally()
        durations: dict[tuple[str, str, str], float] = {}
        for item in items:
            if item.status.is_final:
                key = (item.claim.queue, item.task, item.status.value)
                tally[key] += 1
                durations[key] = durations.get(key, 0.0) + item.duration
        self.many(
            "INSERT INTO lq_finished (queue, task, outcome, count, duration_sum) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (queue, task, outcome) DO UPDATE SET "
            "count = lq_finished.count + excluded.count, "
            "duration_sum = lq_finished.duration_sum + excluded.duration_sum",
            [(*key, n, durations[key]) for key, n in tally.items()])

    def _put_many(self, rows: Sequence[tuple[str, str, bytes]]) -> None:
        self.many("INSERT INTO lq_kv (queue, key, value) VALUES (?, ?, ?) "
                  "ON CONFLICT (queue, key) DO UPDATE SET value = excluded.value", rows)

    def fail_unclaimable(self, consumer_id: str, claim: Claim, error: str) -> None:
        """A claimed payload that cannot run (cannot be unpickled, unknown task): fail it
        visibly and keep it in the ledger, retryable once the code is fixed."""
        now = time.time()
        with self.write():
            self.sql("DELETE FROM lq_ready WHERE id = ? AND claimed_by = ?", (claim.row_id, consumer_id))
            self.sql("UPDATE lq_job SET status = 'failed', finished_at = ?, error = ?, updated_at = ? "
                     "WHERE id = ?", (now, error, now, claim.job_id))
            self.sql("UPDATE lq_attempt SET finished_at = ?, outcome = 'failed', error = ? "
                     "WHERE job_id = ? AND number = ?", (now, error, claim.job_id, claim.attempt))

    # -- release and recover ---------------------------------------------------------------

    def release(self, consumer_id: str, row_ids: Sequence[int] | None = None,
                reason: str = "released when its consumer stopped") -> int:
        """Hand claims back to the ready queue (graceful stop). Returns how many."""
        now = time.time()
        with self.write():
            query = "UPDATE lq_ready SET claimed_by = NULL, claimed_at = NULL WHERE claimed_by = ?"
            params: list[Any] = [consumer_id]
            if row_ids is not None:
                if not row_ids:
                    return 0
                query += f" AND id IN ({', '.join('?' * len(row_ids))})"
                params.extend(row_ids)
            job_ids = [r[0] for r in self.sql(query + " RETURNING job_id", params).fetchall()]
            self._requeue_ledger(job_ids, reason, now, crashed=False)
        return len(job_ids)

    def _requeue_ledger(self, job_ids: Sequence[str], reason: str, now: float, crashed: bool) -> None:
        self.many(f"UPDATE lq_job SET status = 'queued', updated_at = ?{', crashes = crashes + 1' if crashed else ''} "
                  "WHERE id = ?", [(now, j) for j in job_ids])
        self.many("UPDATE lq_attempt SET outcome = 'interrupted', finished_at = ?, error = ? "
                  "WHERE job_id = ? AND outcome = 'running'", [(now, reason, j) for j in job_ids])

    def recover(self, consumer_id: str, reason: str = "its consumer died") -> tuple[int, int]:
        """Take back a dead consumer's claims: to ``queued`` with the attempt recorded as
        ``interrupted``, or to ``failed`` once the job's worker has died ``crash_cap`` times.
        Returns (requeued, failed)."""
        now = time.time()
        requeued: list[str] = []
        failed: list[tuple[int, str, int]] = []
        with self.write():
            rows = self.sql(
                "SELECT r.id, r.job_id, r.crash_cap, COALESCE(j.crashes, 0) FROM lq_ready r "
                "LEFT JOIN lq_job j ON j.id = r.job_id WHERE r.claimed_by = ?", (consumer_id,)).fetchall()
            for row_id, job_id, cap, crashes in rows:
                if crashes + 1 >= cap:
                    failed.append((row_id, job_id, crashes + 1))
                else:
                    requeued.append(job_id)
            self.sql("UPDATE lq_ready SET claimed_by = NULL, claimed_at = NULL, crashes = crashes + 1 "
                     "WHERE claimed_by = ?", (consumer_id,))
            self._requeue_ledger(requeued, reason, now, crashed=True)
            self.many("DELETE FROM lq_ready WHERE id = ?", [(r,) for r, _, _ in failed])
            for _, job_id, n in failed:
                error = f"worker died while running this job ({n} time{'s' if n != 1 else ''})"
                self.sql("UPDATE lq_job SET status = 'failed', crashes = ?, finished_at = ?, "
                         "error = ?, updated_at = ? WHERE id = ?", (n, now, error, now, job_id))
                self.sql("UPDATE lq_attempt SET outcome = 'interrupted', finished_at = ?, error = ? "
                         "WHERE job_id = ? AND outcome = 'running'", (now, reason, job_id))
            self.sql("UPDATE lq_consumer SET status = 'dead', stopped_at = COALESCE(stopped_at, ?) "
                     "WHERE id = ? AND status != 'stopped'", (now, consumer_id))
        return len(requeued), len(failed)

    def paused_queues(self, now: float | None = None) -> set[str]:
        """Queues paused now (a pause with an end time ends by itself)."""
        now = time.time() if now is None else now
        rows = self.sql("SELECT queue, paused_until FROM lq_queue_state WHERE paused = ?", (True,)).fetchall()
        return {q for q, until in rows if until is None or until > now}

    def claim_holders(self) -> list[str]:
        """Ids of consumers that hold claims now."""
        return [r[0] for r in self.sql(
            "SELECT DISTINCT claimed_by FROM lq_ready WHERE claimed_by IS NOT NULL").fetchall()]

    # -- schedule --------------------------------------------------------------------------

    def dispatch_due(self, now: float | None = None) -> int:
        """Move every due scheduled job to the ready queue in one transaction."""
        now = time.time() if now is None else now
        with self.write():
            rows = self.sql(
                "DELETE FROM lq_schedule WHERE app = ? AND eta <= ? "
                "RETURNING id, queue, priority, job_id, data, crash_cap, eta",
                (self.name, now)).fetchall()
            if not rows:
                return 0
            rows.sort(key=lambda r: (r[6], r[0]))
            self.many("INSERT INTO lq_ready (app, queue, priority, job_id, data, crash_cap, "
                      "enqueued_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      [(self.name, q, p, j, d, c, now) for _, q, p, j, d, c, _ in rows])
            self.many("UPDATE lq_job SET status = 'queued', updated_at = ? "
                      "WHERE id = ? AND status = 'scheduled'", [(now, r[3]) for r in rows])
        return len(rows)

    def next_due(self) -> float | None:
        row = self.sql("SELECT MIN(eta) FROM lq_schedule WHERE app = ?", (self.name,)).fetchone()
        return row[0] if row else None

    def fire_periodic(self, task: str, slot: str, job: NewJob) -> bool:
        """Enqueue a periodic run unless this (task, slot) already fired. One transaction."""
        now = time.time()
        try:
            with self.write():
                self.sql("INSERT INTO lq_periodic_run (task, slot, job_id, created_at) "
                         "VALUES (?, ?, ?, ?)", (task, slot, job.id, now))
                self.insert_jobs([job], now)
        except pw.IntegrityError:
            return False
        return True

    def read_schedule(self, ts: Any) -> list[bytes]:
        """Huey's read_schedule: the jobs due at ``ts``, taken off the schedule and handed to
        the caller under this process's claim (enqueue them to hand them to any worker, or
        execute them here); a caller that dies leaves them to be recovered, not lost."""
        return [c.data for c in self.inline.read_due(_epoch(ts, self.utc))]

    def claim_due(self, holder: str, until: float) -> list[Claim]:
        """Move the jobs due at ``until`` from the schedule to ready, claimed by ``holder``
        (not started), in one transaction; soonest first."""
        now = time.time()
        claims = []
        with self.write():
            rows = self.sql(
                "DELETE FROM lq_schedule WHERE app = ? AND eta <= ? "
                "RETURNING id, queue, priority, job_id, data, crash_cap, eta",
                (self.name, until)).fetchall()
            rows.sort(key=lambda r: (r[6], r[0]))
            for _, queue, priority, job_id, data, cap, _ in rows:
                row_id = self.sql(
                    "INSERT INTO lq_ready (app, queue, priority, job_id, data, crash_cap, enqueued_at, "
                    "claimed_by, claimed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (self.name, queue, priority, job_id, data, cap, now, holder, now)).fetchone()[0]
                claims.append(Claim(row_id, job_id, queue, priority, bytes(data), cap, attempt=0))
            self.many("UPDATE lq_job SET status = 'queued', updated_at = ? "
                      "WHERE id = ? AND status = 'scheduled'", [(now, c.job_id) for c in claims])
        return claims

    def start_claim(self, holder: str, claim: Claim) -> None:
        """Mark a claimed job running (a new attempt), as a consumer's claim does."""
        now = time.time()
        with self.write():
            self._mark_running([claim], holder, now)
            claim.claimed_at = now
            claim.revocable = self._revocations_exist()

    def hand_back(self, holder: str, claim: Claim, data: bytes) -> int:
        """Give a claimed job back to the ready queue with ``data`` as its payload."""
        with self.write():
            self.sql("UPDATE lq_ready SET data = ? WHERE id = ? AND claimed_by = ?", (data, claim.row_id, holder))
            if claim.attempt:
                return self.release(holder, [claim.row_id], reason="handed back to the queue by enqueue()")
            return self.sql("UPDATE lq_ready SET claimed_by = NULL, claimed_at = NULL "
                            "WHERE id = ? AND claimed_by = ?", (claim.row_id, holder)).rowcount

    def schedule_size(self) -> int:
        return self.sql("SELECT COUNT(*) FROM lq_schedule WHERE app = ?", (self.name,)).fetchone()[0]

    def scheduled_items(self, limit: int | None = None) -> list[bytes]:
        rows = self.sql("SELECT data FROM lq_schedule WHERE app = ? ORDER BY eta, id" + self._limit(limit),
                        (self.name,)).fetchall()
        return [bytes(r[0]) for r in rows]

    @staticmethod
    def _limit(limit: int | None) -> str:
        return "" if limit is None else f" LIMIT {int(limit)}"

    def flush_schedule(self) -> None:
        """Huey's flush_schedule: the jobs are dropped, and end ``cancelled`` in the ledger."""
        with self.write():
            gone = self.sql("DELETE FROM lq_schedule WHERE app = ? RETURNING job_id", (self.name,)).fetchall()
            self._flushed(gone)

    def _flushed(self, rows: Sequence[tuple[str]]) -> None:
        now = time.time()
        self.many("UPDATE lq_job SET status = 'cancelled', error = 'flushed from the queue', "
                  "finished_at = ?, updated_at = ? WHERE id = ? AND status IN "
                  "('queued', 'scheduled', 'retrying')", [(now, now, r[0]) for r in rows])

    def queue_size(self) -> int:
        return self.sql("SELECT COUNT(*) FROM lq_ready WHERE app = ? AND claimed_by IS NULL",
                        (self.name,)).fetchone()[0]

    def enqueued_items(self, limit: int | None = None) -> list[bytes]:
        rows = self.sql("SELECT data FROM lq_ready WHERE app = ? AND claimed_by IS NULL "
                        "ORDER BY priority DESC, id" + self._limit(limit), (self.name,)).fetchall()
        return [bytes(r[0]) for r in rows]

    def flush_queue(self) -> None:
        """Huey's flush_queue: unclaimed jobs are dropped (``cancelled`` in the ledger);
        running ones are left to finish."""
        with self.write():
            gone = self.sql("DELETE FROM lq_ready WHERE app = ? AND claimed_by IS NULL RETURNING job_id",
                            (self.name,)).fetchall()
            self._flushed(gone)

    # -- key/value: results deferred to the ack, cheap reads on the hot path --------------

    def put_data(self, key: str, value: bytes, is_result: bool = False) -> None:
        unit = self.unit
        if unit is not None and is_result and key == unit.job_id:
            unit.results.append((key, bytes(value)))
            return
        self._put_many([(self.name, key, bytes(value))])

    def _unit_result(self, key: str, pop: bool = False) -> Any:
        # A result Huey stored for the running job is written by its ack; a signal handler
        # or post-execute hook reading it before then gets it from the unit, as in Huey.
        unit = self.unit
        if unit is None or key != unit.job_id or not unit.results:
            return EmptyData
        value = unit.results[-1][1]
        if pop:
            unit.results.clear()
        return value

    def pop_data(self, key: str) -> Any:
        value = self._unit_result(key, pop=True)
        return super().pop_data(key) if value is EmptyData else value

    def peek_data(self, key: str) -> Any:
        value = self._unit_result(key)
        if value is not EmptyData:
            return value
        row = self.sql("SELECT value FROM lq_kv WHERE queue = ? AND key = ?", (self.name, key)).fetchone()
        return EmptyData if row is None else bytes(row[0])

    def peek_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        marks = ", ".join("?" * len(keys))
        rows = self.sql(f"SELECT key, value FROM lq_kv WHERE queue = ? AND key IN ({marks})",
                        (self.name, *keys)).fetchall()
        return {k: bytes(v) for k, v in rows}

    def has_data_for_key(self, key: str) -> bool:
        if self._unit_result(key) is not EmptyData:
            return True
        if self.sql("SELECT 1 FROM lq_kv WHERE queue = ? AND key = ?", (self.name, key)).fetchone() is None:
            return False
        return not self._expired(key)

    # A key written with a ttl (``lock_task(name, ttl=...)``) has its expiry beside it.
    @staticmethod
    def _ttl_key(key: str) -> str:
        return f"ttl:{key}"

    def _expired(self, key: str, now: float | None = None) -> bool:
        row = self.sql("SELECT value FROM lq_kv WHERE queue = ? AND key = ?",
                       (self.name, self._ttl_key(key))).fetchone()
        return row is not None and float(bytes(row[0])) <= (time.time() if now is None else now)

    def put_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Huey's put_if_empty (task locks); ``ttl``: the key lapses after that many seconds."""
        now = time.time()
        with self.write():
            if self._expired(key, now):
                self.many("DELETE FROM lq_kv WHERE queue = ? AND key = ?",
                          [(self.name, key), (self.name, self._ttl_key(key))])
            added = self.sql("INSERT INTO lq_kv (queue, key, value) VALUES (?, ?, ?) ON CONFLICT "
                             "(queue, key) DO NOTHING", (self.name, key, bytes(value))).rowcount == 1
            if added and ttl is not None:
                self._put_many([(self.name, self._ttl_key(key), str(now + ttl).encode())])
        return added

    def delete_data(self, key: str) -> bool:
        # Huey deletes a revoke key after every job: skip it when none existed at claim
        # time, and look before taking the write lock otherwise.
        unit = self.unit
        if unit is not None and not unit.revocable and key == f"r:{unit.job_id}":
            return False
        if self.sql("SELECT 1 FROM lq_kv WHERE queue = ? AND key = ?", (self.name, key)).fetchone() is None:
            return False
        if self.sql("SELECT 1 FROM lq_kv WHERE queue = ? AND key = ?",
                    (self.name, self._ttl_key(key))).fetchone() is not None:
            super().delete_data(self._ttl_key(key))
        return super().delete_data(key)


#: Held by every write transaction of this process. A process forked while one of its
#: threads holds a SQLite write lock inherits SQLite's in-process lock bookkeeping with it
#: and can never write: forks (process workers) take this guard first.
FORK_GUARD = threading.RLock()


class _BusyGuard:
    """Turn SQLite's "database is locked" after the busy timeout into a clear error."""

    def __init__(self, txn: Any) -> None:
        self.txn = txn

    def __enter__(self) -> Any:
        FORK_GUARD.acquire()
        try:
            return self.txn.__enter__()
        except pw.OperationalError as exc:
            FORK_GUARD.release()
            raise _busy(exc) from exc
        except BaseException:
            FORK_GUARD.release()
            raise

    def __exit__(self, et: Any, ev: Any, tb: Any) -> Any:
        try:
            handled = self.txn.__exit__(et, ev, tb)
        except pw.OperationalError as err:
            raise _busy(err) from err
        finally:
            FORK_GUARD.release()
        if isinstance(ev, pw.OperationalError):
            clear = _busy(ev)
            if clear is not ev:
                raise clear from ev
        return handled


def _epoch(ts: Any, utc: bool = True) -> float:
    """Huey's timestamps are naive datetimes: UTC (``utc=True``) or local time."""
    if isinstance(ts, (int, float)):
        return float(ts)
    if ts.tzinfo is None and utc:
        ts = ts.replace(tzinfo=dt.UTC)
    return ts.timestamp()


def _busy(exc: Exception) -> Exception:
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return DatabaseBusyError(
            "the database stayed locked by another process past the busy timeout; nothing was "
            "written: retry, or raise busy_timeout (LITEQUEUE_BUSY_TIMEOUT)")
    return exc


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None
