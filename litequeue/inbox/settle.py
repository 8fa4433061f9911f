"""Where a finished job's file is *settled*: moved to ``done/`` or ``failed/``.

Consumers do it right after a job's ack commits (:class:`FileSettler`, an observer every
``LiteConsumer`` runs); the watcher does it too, for jobs no consumer saw end (cancelled
while queued, failed at the crash cap, or a consumer killed between its ack and the move).

Order, so that a crash at any instant is repaired by the next watcher (``reconcile.py``):

1. one transaction claims the files: ``state='processing'`` becomes ``done``/``failed`` with
   the destination path, guarded by ``WHERE state = 'processing'`` so of two settlers racing
   (a consumer and a watcher) exactly one wins;
2. the winner writes ``NAME.error.txt`` for a failed file, then renames the file there
   (never over an existing name), so a file in ``failed/`` always has its report beside it.

A crash between 1 and 2 leaves the file in the processing folder with a row that says where
it belongs; the watcher finishes the move. Succeeded jobs go to ``done/``; failed, cancelled
and expired jobs go to ``failed/``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litequeue.base.values import Finished

from .layout import Layout, load_layout
from .moves import free_name, move_noreplace, remove_empty_dirs, write_new

log = logging.getLogger("litequeue.inbox")

ERROR_SUFFIX = ".error.txt"
#: Where a file goes, by its job's final status.
DESTINATION = {"succeeded": "done", "failed": "failed", "cancelled": "failed", "expired": "failed"}


@dataclass
class Outcome:
    """How a job ended, as far as its file cares."""

    status: str
    error: str | None = None
    traceback: str | None = None


class LayoutCache:
    """Inbox layouts read from the database, kept for ``ttl`` seconds."""

    def __init__(self, ttl: float = 10.0) -> None:
        self.ttl = ttl
        self._items: dict[str, tuple[float, Layout | None]] = {}

    def get(self, store: Any, root: str) -> Layout | None:
        now = time.monotonic()
        hit = self._items.get(root)
        if hit is None or now - hit[0] > self.ttl or hit[1] is None:
            hit = (now, load_layout(store, root))
            self._items[root] = hit
        return hit[1]


_layouts = LayoutCache()


def settle_jobs(store: Any, outcomes: dict[str, Outcome], layouts: LayoutCache | None = None) -> int:
    """Settle the files of finished jobs ``outcomes`` (job id -> outcome); returns how many
    files this call moved. Jobs without a file cost one indexed query per call."""
    finals = {j: o for j, o in outcomes.items() if o.status in DESTINATION}
    if not finals:
        return 0
    layouts = layouts or _layouts
    ids = list(finals)
    marks = ", ".join("?" * len(ids))
    rows = store.sql(f"SELECT id, job_id, inbox, name, path, token FROM lq_inbox_file "
                     f"WHERE job_id IN ({marks}) AND state = 'processing'", ids).fetchall()
    plans = []
    for row_id, job_id, inbox, name, path, token in rows:
        layout = layouts.get(store, inbox)
        if layout is None:
            log.warning("file %s: no layout recorded for inbox %s; left in place", path, inbox)
            continue
        state = DESTINATION[finals[job_id].status]
        folder = layout.folder(layout.done if state == "done" else layout.failed)
        rel = free_name(folder, name, ERROR_SUFFIX if state == "failed" else None)
        plans.append((row_id, job_id, layout, Path(path), token, state, folder, rel))
    if not plans:
        return 0
    now = time.time()
    won = []
    with store.write():
        for plan in plans:
            row_id, _, _, _, _, state, folder, rel = plan
            cur = store.sql("UPDATE lq_inbox_file SET state = ?, path = ?, settled_at = ? "
                            "WHERE id = ? AND state = 'processing'", (state, str(folder / rel), now, row_id))
            if cur.rowcount == 1:
                won.append(plan)
    moved = 0
    for row_id, job_id, layout, src, token, state, folder, rel in won:
        if state == "failed":  # the report first: whoever sees the file in failed/ finds its report
            folder.joinpath(rel).parent.mkdir(parents=True, exist_ok=True)
            write_error_report(folder / rel, job_id, finals[job_id])
        if finish_move(store, row_id, layout, src, folder, rel, token, ERROR_SUFFIX if state == "failed" else None):
            moved += 1
    return moved


def finish_move(store: Any, row_id: int, layout: Layout, src: Path, folder: Path, rel: str,
                token: str | None, companion: str | None = None) -> bool:
    """Move ``src`` to ``folder/rel`` as the row already records; on a name taken meanwhile,
    to a suffixed name (and record that). Returns False if the file was gone."""
    dst = folder / rel
    while True:
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            move_noreplace(src, dst)
            break
        except FileExistsError:
            if _same_file(src, dst):  # a link+unlink move cut short by a crash
                os.unlink(src)
                break
            rel = free_name(folder, rel, companion)
            dst = folder / rel
            with store.write():
                store.sql("UPDATE lq_inbox_file SET path = ? WHERE id = ?", (str(dst), row_id))
        except FileNotFoundError:
            log.warning("file %s is gone (moved or deleted by someone else); marked missing", src)
            with store.write():
                store.sql("UPDATE lq_inbox_file SET state = 'missing' WHERE id = ?", (row_id,))
            return False
    if token:
        remove_empty_dirs(src.parent, layout.root / layout.processing)
    log.info("file %s -> %s", src.name, dst)
    return True


def write_error_report(path: Path, job_id: str, outcome: Outcome) -> None:
    text = f"job {job_id} {outcome.status}: {outcome.error or '(no error message)'}\n"
    if outcome.traceback:
        text += "\n" + outcome.traceback.rstrip() + "\n"
    try:
        write_new(path.with_name(path.name + ERROR_SUFFIX), text)
    except OSError:
        log.exception("could not write the error report beside %s", path)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def job_outcomes(store: Any, job_ids: Iterable[str]) -> dict[str, tuple[Outcome, float | None]]:
    """The ledger's status (and error, finish time) of ``job_ids``."""
    ids = list(job_ids)
    out: dict[str, tuple[Outcome, float | None]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        for job_id, status, error, tb, finished in store.sql(
                f"SELECT id, status, error, traceback, finished_at FROM lq_job WHERE id IN ({marks})",
                chunk).fetchall():
            out[job_id] = (Outcome(status, error, tb), finished)
    return out


class FileSettler:
    """The observer a consumer runs after each ack: settles the files of final jobs.

    ``storage`` is called lazily (in the acker thread, or in a worker process after the
    fork) so the settler uses the consumer's own database connection for that thread.
    """

    def __init__(self, storage: Callable[[], Any]) -> None:
        self.storage = storage
        self.lock = threading.Lock()

    def __call__(self, items: Sequence[Finished]) -> None:
        outcomes = {i.claim.job_id: Outcome(i.status.value, i.error, i.traceback) for i in items
                    if i.status.is_final and i.claim.has_file}
        if not outcomes:
            return
        with self.lock:
            settle_jobs(self.storage(), outcomes)

    def __repr__(self) -> str:
        return "<inbox FileSettler>"
