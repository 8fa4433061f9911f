"""Where the processing folder is *reconciled* with the ledger (at start and every rescan).

Each ``.processing/lq-<job id>/`` folder is looked up by its token:

* no row: a watcher was killed between the rename and the commit: re-take the file under
  that job id (``take.retake``), so it gets exactly one job;
* row ``processing`` and its job final (for longer than ``grace``): no consumer settled it
  (cancelled while queued, failed at the crash cap, consumer killed after its ack): settle it;
* row ``done``/``failed``/``duplicate`` while the file is still here: a settler was killed
  between its commit and its rename: finish the move (unless a retry of that job is under
  way: then the retry hook was cut short, and the row is pointed at the new job);
* an empty folder: removed.

Stray entries that are not token folders are left alone.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litequeue.base.states import FINAL_VALUES

from .layout import TOKEN_PREFIX
from .moves import remove_empty_dirs
from .settle import ERROR_SUFFIX, finish_move, job_outcomes, settle_jobs
from .take import Taker, retake

log = logging.getLogger("litequeue.inbox")


@dataclass
class Repairs:
    retaken: int = 0
    settled: int = 0
    moved: int = 0
    removed_dirs: int = 0

    def __bool__(self) -> bool:
        return bool(self.retaken or self.settled or self.moved)


def reconcile(taker: Taker, grace: float = 5.0) -> Repairs:
    """Repair the processing folder of ``taker``'s inbox (see the module docstring)."""
    layout, store = taker.layout, taker.store
    processing = layout.root / layout.processing
    out = Repairs()
    try:
        entries = [e for e in os.scandir(processing) if e.name.startswith(TOKEN_PREFIX)
                   and e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return out
    tokens = {e.name: Path(e.path) for e in entries}
    rows = _rows_by_token(store, list(tokens))
    now = time.time()
    pending: dict[str, str] = {}  # job id -> token, rows still processing
    for token, folder in tokens.items():
        row = rows.get(token)
        if row is None:
            if not any(p.is_file() for p in folder.rglob("*")):
                remove_empty_dirs(folder, processing)
                out.removed_dirs += 1
                continue
            out.retaken += retake(taker, folder, store)
            continue
        row_id, job_id, name, path, state, settled_at = row
        if state == "processing":
            if job_id:
                pending[job_id] = token
            continue
        if state in ("done", "failed", "duplicate") and (settled_at or 0) < now - grace:
            src = folder / name
            if not src.exists():
                remove_empty_dirs(folder, processing)
                continue
            if state == "failed" and _resume_retry(store, row_id, job_id, src):
                continue
            dest = Path(path)
            base = layout.folder({"done": layout.done, "failed": layout.failed,
                                  "duplicate": layout.duplicates}[state])
            if finish_move(store, row_id, layout, src, base, dest.relative_to(base).as_posix(), token,
                           ERROR_SUFFIX if state == "failed" else None):
                out.moved += 1
    if pending:
        outcomes = job_outcomes(store, pending)
        due = {j: o for j, (o, finished) in outcomes.items()
               if o.status in FINAL_VALUES and (finished or 0) < now - grace}
        if due:
            out.settled += settle_jobs(store, due)
    if out:
        log.warning("reconciled %s: re-took %d file(s) renamed before a crash, settled %d, "
                    "finished %d interrupted move(s)", layout.root, out.retaken, out.settled, out.moved)
    return out


def _rows_by_token(store: Any, tokens: list[str]) -> dict[str, tuple[Any, ...]]:
    out: dict[str, tuple[Any, ...]] = {}
    for start in range(0, len(tokens), 500):
        chunk = tokens[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        for row in store.sql(f"SELECT token, id, job_id, name, path, state, settled_at FROM lq_inbox_file "
                             f"WHERE token IN ({marks}) ORDER BY id", chunk).fetchall():
            out[row[0]] = row[1:]
    return out


def _resume_retry(store: Any, row_id: int, job_id: str | None, src: Path) -> bool:
    """A failed file back in its processing folder with a live retry: the retry hook was cut
    short after its rename; point the row at the retry."""
    if not job_id:
        return False
    found = store.sql("SELECT id, status FROM lq_job WHERE retried_from = ? ORDER BY seq DESC LIMIT 1",
                      (job_id,)).fetchone()
    if found is None or found[1] in FINAL_VALUES:
        return False
    with store.write():
        store.sql("UPDATE lq_inbox_file SET job_id = ?, state = 'processing', path = ?, settled_at = NULL "
                  "WHERE id = ?", (found[0], str(src), row_id))
    log.warning("file %s: resumed the retry as job %s", src, found[0])
    return True
