"""The bulk path (issue 23): ``app.enqueue_many`` and ``task.map`` write each job with Huey's
per-task enqueue skipped, in one transaction, and what they write is what one ``enqueue``
per job writes: the ledger record, ids, tags, batch membership, unique keys, the doorbell."""

from __future__ import annotations

from typing import Any

from huey import signals as S

from litequeue import LiteQueue

COLUMNS = ("task", "queue", "priority", "status", "args", "kwargs", "attempts", "crashes", "crash_cap",
           "has_file", "parent_id", "retried_from", "eta IS NULL", "payload IS NULL")


def make(tmp_path: Any, name: str) -> tuple[LiteQueue, Any]:
    app = LiteQueue("bulk", db=tmp_path / f"{name}.db")

    @app.task(queue="q", priority=3, tags=["base"])
    def work(i: int, word: str = "x") -> int:
        return i

    return app, work


def jobs_of(tmp_path: Any, name: str, build: Any) -> list[Any]:
    app, work = make(tmp_path, name)
    tasks = [work.s(i) for i in range(4)] + [
        work.s(4, word="tagged").with_options(tags=["t1", "t2"]),
        work.s(5).with_options(unique_key="only-one"),
        work.s(6).with_options(unique_key="only-one"),  # the same key: one job holds it
        work.s(7).then(work, 8),  # a pipeline: Huey's own enqueue, its second step waiting
    ]
    ids = build(app, tasks)
    s = app.storage
    order = {job_id: i for i, job_id in enumerate(ids)}
    rows = sorted(s.sql(f"SELECT id, {', '.join(COLUMNS)} FROM lq_job").fetchall(),
                  key=lambda r: order.get(r[0], len(order)))
    tags = sorted((order.get(j, -1), t) for t, j in s.sql("SELECT tag, job_id FROM lq_job_tag").fetchall())
    unique = [(k, order.get(j, -1)) for k, j in s.sql("SELECT key, job_id FROM lq_unique").fetchall()]
    ready = sorted((order.get(j, -1), q, p, c) for j, q, p, c in s.sql(
        "SELECT job_id, queue, priority, crash_cap FROM lq_ready").fetchall())
    counts = sorted(s.sql("SELECT queue, status, n FROM lq_job_count WHERE n != 0").fetchall())
    parent = 1 + COLUMNS.index("parent_id")  # an id of its own database: compared by position
    rows = [(*r[1:parent], order.get(r[parent], r[parent]), *r[parent + 1:]) for r in rows]
    return [rows, tags, unique, ready, counts, ids == [t.id for t in tasks]]


def test_enqueue_many_writes_what_one_enqueue_each_writes(tmp_path):
    one_each = jobs_of(tmp_path, "single", lambda app, tasks: [app.enqueue(t) and t.id for t in tasks])
    bulk = jobs_of(tmp_path, "bulk", lambda app, tasks: app.enqueue_many(tasks))
    assert bulk == one_each
    assert bulk[-1] is True and len(bulk[0]) == 8  # 7 jobs (one unique key dropped a job) + the waiting step


def test_map_skips_hueys_enqueue_and_rings_once(tmp_path):
    app, work = make(tmp_path, "map")
    rings: list[int] = []
    committed = app.storage.committed

    def counted() -> None:  # the real doorbell, counted
        rings.append(1)
        committed()

    app.storage.committed = counted
    results = work.map(range(50))
    assert len(rings) == 1, "one commit, one ring"
    assert [r.id for r in results] == [r[0] for r in app.storage.sql("SELECT id FROM lq_job ORDER BY seq")]
    assert app.storage.sql("SELECT COUNT(*) FROM lq_ready").fetchone()[0] == 50


def test_a_signal_receiver_still_hears_each_enqueue(tmp_path):
    """An application listening to Huey's signals keeps hearing SIGNAL_ENQUEUED: then the
    bulk path goes through Huey's enqueue (same transaction, same rows)."""
    app, work = make(tmp_path, "signals")
    heard: list[str] = []

    @app.signal(S.SIGNAL_ENQUEUED)
    def on_enqueued(signal: str, task: Any) -> None:
        heard.append(task.id)

    ids = app.enqueue_many([work.s(i) for i in range(5)])
    assert heard == ids


def test_bulk_members_join_the_open_batch(tmp_path):
    app, work = make(tmp_path, "batch")
    with app.batch("crawl") as batch:
        ids = app.enqueue_many([work.s(i) for i in range(6)])
    members = {r[0] for r in app.storage.sql("SELECT id FROM lq_job WHERE batch_id = ?", (batch.id,)).fetchall()}
    assert members == set(ids)
    assert app.storage.sql("SELECT total FROM lq_batch WHERE id = ?", (batch.id,)).fetchone()[0] == 6
