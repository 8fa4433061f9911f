"""Huey's storage on the ledger's database: the queue and schedule Huey reads and writes, as claimed rows.

``LiteStorage`` extends Huey's contrib ``SqlStorage`` (its key/value store, counters and
locks: :mod:`litequeue.engine.storage_kv`) with tables that never lose a job; each method
opens one write transaction (:mod:`litequeue.engine.write_guard`) around
the writer files in :mod:`litequeue.jobs` (one per stage of a job):

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
import contextvars
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import peewee as pw
from huey.contrib.sql_huey import SqlStorage

from litequeue.base import defaults
from litequeue.base.clock import to_epoch
from litequeue.base.errors import ConfigurationError, DatabaseError, DatabaseUnreachableError
from litequeue.base.values import Claim, Finished, NewJob, Unit
from litequeue.engine.huey_tables import huey_models
from litequeue.engine.storage_kv import KeyValues
from litequeue.engine.write_guard import WriteGuard
from litequeue.jobs import cancel, enqueue, finish, recover
from litequeue.jobs import claim as claiming
from litequeue.store import dialect, faults, migrations
from litequeue.store.borrowed import Borrowed, PeeweeDatabase
from litequeue.store.commit_sync import relaxed
from litequeue.store.database import open_checked, open_database
from litequeue.store.doorbell import BellTarget
from litequeue.store.models import Ledger, make_ledger

if TYPE_CHECKING:
    from litequeue.runtime.in_process import InProcessClaims


class LiteStorage(KeyValues, SqlStorage):
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
        #: set by LiteQueue: where :meth:`after_write` rings once an application's transaction commits
        self.bell: BellTarget = None
        #: the application's connection every statement of this context runs on (``LiteQueue.using``)
        self.borrowed: contextvars.ContextVar[Borrowed | None] = contextvars.ContextVar(
            f"litequeue_using_{id(self)}", default=None)
        self.utc = True
        #: the app's concurrency limits and breakers (litequeue.base.limits), enforced by the claim
        self.limits: Any = None
        #: set by LiteQueue (runtime.in_process): this process's claims taken through Huey's
        #: dequeue() / read_schedule(); None in a store opened for commands (they never dequeue)
        self.inline: InProcessClaims | None = None
        if create_tables:
            self.create_tables()

    # -- schema -------------------------------------------------------------------------

    def create_models(self) -> tuple[type[pw.Model], ...]:
        """The models of lq_kv, lq_schedule, lq_ready and lq_counter. Huey's SqlStorage
        assigns them to ``self.KV, self.Schedule, self.Task, self.Counter``: so ``self.Task``
        is the ``lq_ready`` model (the ready queue), not a Huey task."""
        return huey_models(self.database)

    def create_tables(self) -> None:
        """Bring the database to this code's schema (:mod:`litequeue.store.migrations`): a new one
        gets every migration, an older one the missing ones, a newer one is refused. An
        up-to-date database costs one read and no write lock (it may be held elsewhere)."""
        with self.database.connection_context() if self.database.is_closed() else contextlib.nullcontext():
            migrations.ensure(self.database)

    def drop_tables(self) -> None:
        self.database.drop_tables([self.KV, self.Schedule, self.Task, self.Counter, *self.ledger.models])

    # -- low level ----------------------------------------------------------------------

    def sql(self, query: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement (written with ``?`` placeholders) and return the cursor; inside
        ``LiteQueue.using(connection)``, on that connection."""
        borrowed = self.borrowed.get()
        if borrowed is not None:
            return borrowed.sql(query, params)
        return dialect.sql(self.database, query, params)

    def many(self, query: str, rows: Iterable[Sequence[Any]]) -> int:
        """Run ``query`` once per row; returns the rows changed."""
        borrowed = self.borrowed.get()
        if borrowed is not None:
            return borrowed.many(query, rows)
        return dialect.many(self.database, query, rows)

    def write(self, wait_for_disk: bool = True) -> Any:
        """A write transaction; SQLite's busy timeout waits out other writers. Inside
        ``LiteQueue.using(connection)``: a savepoint of the application's transaction.
        ``wait_for_disk=False``: its commit does not wait for the disk, for a transaction that
        only claims (see :mod:`litequeue.store.commit_sync` for why that loses nothing)."""
        borrowed = self.borrowed.get()
        if borrowed is not None:
            return WriteGuard(borrowed.savepoint())
        txn = self.atomic()
        return WriteGuard(txn if wait_for_disk else relaxed(self.database, txn), self.database)

    def after_write(self, job_ids: Sequence[str]) -> None:
        """Ring the doorbell for the jobs just written: now, or, when they were written in a
        transaction still open (the application's), once it commits (never if it rolls back)."""
        borrowed = self.borrowed.get()
        if borrowed is None:
            if not self.database.in_transaction():
                self.committed()
                return
            borrowed = PeeweeDatabase(self.database)  # an application's atomic() on this very database
        ids = list(job_ids)[:50]

        def visible() -> bool:
            return bool(ids) and dialect.sql(self.database, f"SELECT 1 FROM lq_job WHERE id IN "
                                             f"({dialect.marks(len(ids))}) LIMIT 1", ids).fetchone() is not None

        borrowed.ring_after_commit(self.bell, visible)

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
        if self.borrowed.get() is not None or self.database.in_transaction() or dialect.is_sqlite(self.database):
            with self.write():
                self.insert_jobs(jobs, time.time() if now is None else now)
            return
        self._write_jobs_retrying(jobs, now)

    def _write_jobs_retrying(self, jobs: Sequence[NewJob], now: float | None) -> None:
        """On a database server: a connection lost under the write (a terminated backend, a
        restart) is retried on a new one, for the retry window (``busy_timeout``); then one
        line. Had the lost commit gone through, the jobs are there: that is success."""
        window = getattr(self.database, "retry_window", 0.0)
        deadline = time.monotonic() + window
        delay, lost = 0.05, None
        while True:
            try:
                with self.write():
                    self.insert_jobs(jobs, time.time() if now is None else now)
                return
            except Exception as exc:
                if lost is not None and isinstance(exc, pw.IntegrityError) and self._written(jobs):
                    return
                if not faults.is_disconnect(exc) or isinstance(exc, DatabaseError):
                    raise
                lost = exc
            if time.monotonic() + delay > deadline:
                name, _ = faults.location(self.database)
                raise DatabaseUnreachableError(
                    f"cannot reach the {name} (retried for {window:g}s): {faults.first_line(lost)}; "
                    "nothing was written; check that the server runs, or raise busy_timeout "
                    "(LITEQUEUE_BUSY_TIMEOUT)") from None
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _written(self, jobs: Sequence[NewJob]) -> bool:
        return self.sql("SELECT 1 FROM lq_job WHERE id = ?", (jobs[0].id,)).fetchone() is not None

    def insert_jobs(self, jobs: Sequence[NewJob], now: float) -> None:
        """Insert queue/schedule and ledger rows; call inside :meth:`write`."""
        enqueue.enqueue(self, jobs, now)

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
        jobs[0].eta = to_epoch(ts, self.utc)
        jobs[0].on_schedule = True
        self._add(jobs)

    def _rows_for(self, data: bytes) -> list[NewJob]:
        if self.describe is None:
            raise ConfigurationError("LiteStorage writes jobs for a LiteQueue; create one with LiteQueue(...)")
        return self.describe(data)

    def add_described(self, jobs: list[NewJob]) -> None:
        """Write the rows of one task, described by the app (the bulk path of
        ``enqueue_many``/``map``): as :meth:`enqueue` does once it has them."""
        jobs[0].on_queue = True
        self._add(jobs)

    def _add(self, jobs: list[NewJob]) -> None:
        unit = self.unit
        if unit is not None and unit.defer_batch_members(jobs):
            return  # a running job's batch members: written by its ack (litequeue.engine.batches)
        if self.deferring is not None:
            self.write_jobs(jobs)  # into the unit, written by the ack
            return
        if self.inline is not None and self.inline.hand_back(jobs[0]):
            self.committed()  # a job dequeue()/read_schedule() handed out, enqueued again
            return
        pending = getattr(self._local, "bulk", None)
        if pending is not None:
            pending.extend(jobs)
            if self._local.chunk is not None and len(pending) >= self._local.chunk:
                self._flush_bulk()
            return
        self.write_jobs(jobs)
        self.after_write([j.id for j in jobs])

    @contextlib.contextmanager
    def bulk(self, chunk: int | None = 10_000) -> Iterator[None]:
        """Collect the jobs enqueued inside the block and write them ``chunk`` per
        transaction (``None``: all in one, all or nothing), ringing the doorbell once per
        commit (``enqueue_many``, ``map``)."""
        if self.deferring is not None or getattr(self._local, "bulk", None) is not None:
            yield  # a running job's unit or an outer bulk block already collects them
            return
        self._local.bulk, self._local.chunk = [], chunk
        try:
            yield
            self._flush_bulk()
        finally:
            self._local.bulk = None

    def _flush_bulk(self) -> None:
        jobs, self._local.bulk = self._local.bulk, []
        if jobs:
            self.write_jobs(jobs)
            self.after_write([j.id for j in jobs])

    def dequeue(self) -> bytes | None:
        """Huey's dequeue: the next ready job, *claimed* by this process (not deleted).
        ``LiteQueue.execute`` acks it; if this process dies first, a consumer recovers it."""
        claim = self._in_process().dequeue()
        return None if claim is None else claim.data

    def _in_process(self) -> InProcessClaims:
        if self.inline is None:
            raise ConfigurationError("LiteStorage hands out jobs for a LiteQueue; create one with LiteQueue(...)")
        return self.inline

    # -- claim ---------------------------------------------------------------------------

    def claim(self, consumer_id: str, queues: Sequence[str] | None, limit: int,
              paused: Iterable[str] = (), worker: str | None = None) -> list[Claim]:
        """Claim up to ``limit`` ready jobs for ``consumer_id`` (one transaction); see
        :func:`litequeue.jobs.claim.claim`."""
        if limit <= 0:
            return []
        with self.write():
            return claiming.claim(self, consumer_id, queues, limit, paused, worker)

    def ack_and_claim(self, consumer_id: str, finished: Sequence[Finished], queues: Sequence[str] | None,
                      limit: int, paused: Iterable[str] = (), isolate: str | None = None,
                      starts: Sequence[tuple[Claim, float]] = (), start_first: int | None = None,
                      ) -> tuple[list[Finished], list[Claim] | None]:
        """The starts of claims taken ahead that workers began (:func:`claiming.record_starts`),
        :func:`finish.ack` and :func:`claiming.claim` in ONE transaction: one commit (one
        fsync) per round for a busy consumer. ``start_first``: how many of the new claims
        start now (the idle workers'); the rest are claimed ahead. The claims are None when
        ``consumer_id`` was declared dead (:func:`claiming.holder_fenced`)."""
        if not finished and limit <= 0 and not starts:
            return [], []
        # One commit: claims and starts alone need not wait for the disk on SQLite
        # (store/commit_sync.py); on PostgreSQL the writes whose answers nothing reads share
        # round trips (dialect.pipelined).
        pipeline = contextlib.nullcontext() if self.borrowed.get() is not None else dialect.pipelined(self.database)
        with self.write(wait_for_disk=bool(finished)), pipeline:
            fenced = limit > 0 and claiming.holder_fenced(self, consumer_id)  # first: see its lock order
            claiming.record_starts(self, consumer_id, starts)
            acked = finish.ack(self, consumer_id, finished)
            claims = None if fenced else claiming.claim(self, consumer_id, queues, limit, paused, None,
                                                        isolate, fenced=False, start_first=start_first)
        return acked, claims

    def ack(self, consumer_id: str, finished: Sequence[Finished],
            starts: Sequence[tuple[Claim, float]] = ()) -> list[Finished]:
        """Acknowledge finished jobs in one transaction (fenced: see :func:`litequeue.jobs.finish.ack`),
        after writing ``starts`` (claims taken ahead that workers began)."""
        if not finished and not starts:
            return []
        with self.write():
            claiming.record_starts(self, consumer_id, starts)
            return finish.ack(self, consumer_id, finished)

    def fail_unclaimable(self, consumer_id: str, claim: Claim, error: str) -> bool:
        """A claimed payload that cannot run ends ``failed`` with ``error`` (one transaction)."""
        with self.write():
            return finish.fail_unrunnable(self, consumer_id, claim, error)

    def release(self, consumer_id: str, row_ids: Sequence[int] | None = None,
                reason: str = "released when its consumer stopped") -> int:
        """Hand claims back to the ready queue (graceful stop). Returns how many."""
        with self.write():
            return recover.release(self, consumer_id, row_ids, reason)

    def unclaim_strays(self, consumer_id: str, keep: Sequence[int]) -> int:
        """Claims of ``consumer_id`` other than ``keep`` back to the queue, as never taken
        (a commit whose answer the connection lost). Returns how many."""
        with self.write():
            return recover.unclaim_strays(self, consumer_id, keep)

    def recover(self, consumer_id: str, reason: str = "its consumer died",
                row_ids: Sequence[int] | None = None, peak_rss_bytes: int | None = None) -> tuple[int, int]:
        """Take back a dead holder's claims (all, or ``row_ids``); returns (requeued, failed
        at the crash cap). ``peak_rss_bytes``: the dead worker process's last memory seen."""
        with self.write():
            return recover.recover(self, consumer_id, reason, row_ids, peak_rss_bytes=peak_rss_bytes)

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
        with self.write():
            return enqueue.dispatch_due(self, time.time() if now is None else now)

    def next_due(self) -> float | None:
        row = self.sql("SELECT MIN(eta) FROM lq_schedule WHERE app = ?", (self.name,)).fetchone()
        return row[0] if row else None

    def fire_periodic(self, task: str, slot: str, job: NewJob, app: str | None = None) -> bool:
        """Enqueue a periodic run (of ``app``, by default this storage's) unless this (task,
        slot) already fired. One transaction."""
        try:
            with self.write():
                enqueue.fire_periodic(self, task, slot, job, time.time(), app=app)
        except pw.IntegrityError:
            return False
        return True

    def read_schedule(self, ts: Any) -> list[bytes]:
        """Huey's read_schedule: the jobs due at ``ts``, taken off the schedule and handed to
        the caller under this process's claim (enqueue them to hand them to any worker, or
        execute them here); a caller that dies leaves them to be recovered, not lost."""
        return [c.data for c in self._in_process().read_due(to_epoch(ts, self.utc))]

    def claim_due(self, holder: str, until: float) -> list[Claim]:
        """Move the jobs due at ``until`` to ready, claimed by ``holder`` (one transaction)."""
        with self.write():
            return claiming.claim_due(self, holder, until)

    def start_claim(self, holder: str, claim: Claim) -> None:
        """Mark a claimed job running (a new attempt), as a consumer's claim does."""
        with self.write():
            claiming.start_claimed(self, holder, claim)

    def hand_back(self, holder: str, claim: Claim, data: bytes) -> int:
        """Give a claimed job back to the ready queue with ``data`` as its payload."""
        with self.write():
            return recover.hand_back(self, holder, claim, data)

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
        with self.write():
            cancel.flush(self, "lq_schedule")

    def queue_size(self) -> int:
        return self.sql("SELECT COUNT(*) FROM lq_ready WHERE app = ? AND claimed_by IS NULL",
                        (self.name,)).fetchone()[0]

    def enqueued_items(self, limit: int | None = None) -> list[bytes]:
        rows = self.sql("SELECT data FROM lq_ready WHERE app = ? AND claimed_by IS NULL "
                        "ORDER BY priority DESC, id" + self._limit(limit), (self.name,)).fetchall()
        return [bytes(r[0]) for r in rows]

    def flush_queue(self) -> None:
        with self.write():
            cancel.flush(self, "lq_ready")


def open_store(db: str | None = None, *, create: bool = False, app: str = defaults.APP_NAME,
               readonly: bool = False) -> LiteStorage:
    """A storage on ``db`` for commands that need only the database, not the user's code.

    ``create``: a new database gets the schema and an older one is migrated; otherwise an
    out-of-date schema is refused (run ``litequeue migrate``), never changed."""
    database = open_database(db, create=True, readonly=readonly) if create else open_checked(db, readonly=readonly)
    return LiteStorage(app, database=database, create_tables=create)
