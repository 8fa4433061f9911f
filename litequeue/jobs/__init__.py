"""Layer 2: the job-state writer, the only code that changes the job tables, one file per stage
of a job's life.

A job's life, and the function (and file) that moves it along:

======================================  ==============================================================
``enqueue.enqueue``                     new queue (or schedule) row + ledger row, ``queued`` /
                                        ``scheduled`` / ``waiting`` (a pipeline step, a dependency)
``enqueue.dispatch_due``                due scheduled rows move to the ready queue (``scheduled`` /
                                        ``retrying`` -> ``queued``)
``claim.claim``                         ready rows get a holder; ``claim.start`` marks them ``running``
                                        with an attempt (limits and breakers: ``limits.Gate``); rows
                                        claimed ahead (the prefetch) stay ``queued`` until a worker
                                        takes one: ``claim.record_starts`` writes its start
``finish.ack``                          the claim is deleted and the outcome written (``succeeded``,
                                        ``failed``, ``retrying``, ``cancelled``, ``expired``), with the
                                        writes the job made
``finish.fail_unrunnable``              a claimed payload that cannot run ends ``failed``
``recover.release``                     a claim handed back at a graceful stop (attempt ``interrupted``)
``recover.recover``                     a dead holder's claims go back to ``queued``, or ``failed`` at
                                        the crash cap
``cancel.cancel``                       ``waiting`` / ``scheduled`` / ``queued`` / ``retrying`` ->
                                        ``cancelled``; a running job is asked to stop
``cancel.purge``, ``cancel.flush``      queued jobs of a queue (of the app) -> ``cancelled``
``retry.retry``                         a final job is enqueued again under a new id, once
``prune.prune_jobs``                    finished jobs (and their attempts and results) are deleted
``dependencies.settle``                 a job ended: its dependents and unique key move on
``batches.batch_members_finished``      a batch member ended: the batch counts it, and finishes once
======================================  ==============================================================

The other files: ``rows`` (shared row writes: the event log, progress), ``counters`` (what the
acks count: jobs per minute, the run time histograms), ``unique`` (unique
keys), ``consumers`` (the consumer registry, queue pauses, stored schedules) and ``limits``
(the concurrency gate, breakers). ``actions`` (self-transacting actions for CLI and web) and
``retention`` (what to prune) write through them.

Each transition states its precondition in its ``WHERE`` (``AND claimed_by = ?``,
``AND status IN (...)``) and learns from ``RETURNING`` whether it happened, so two actors
racing on one job cannot both win. Every function runs inside the caller's write
transaction unless it says it opens its own. Statuses come from :class:`JobStatus`.

A grep for ``INSERT``/``UPDATE``/``DELETE`` on an ``lq_`` table finds these files (and the
Huey key/value store in ``engine/storage.py``, the inbox's own table, and the migrations)
only (tests/unit/test_one_writer.py).
"""

# Loaded with the package: it sets ``batches.write_callbacks`` (a finished batch enqueues its
# callbacks), whichever stage a caller imports first.
from litequeue.jobs import enqueue  # noqa: F401
