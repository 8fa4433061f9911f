"""Where a file is *taken*: renamed into its own processing folder, then recorded with its job.

Crash safety (why this order). Taking a batch of files is:

1. for each file, choose its job id and rename it into ``.processing/lq-<job id>/<rel>``
   (an atomic rename: the file is in the inbox or there, never both, never neither);
2. hash each file, then ONE transaction writes every job (queue row + ledger row) and every
   ``lq_inbox_file`` row (with ``token = lq-<job id>``);
3. ring the consumers' doorbell.

A watcher SIGKILLed before 1 leaves the file in the inbox (taken again later). Killed
between 1 and 2, it leaves a file in a processing folder with no row: the next watcher,
before it takes anything, re-takes every such file under the job id its folder names
(``reconcile.py``), so the file gets exactly one job. Killed after 2, the file has its job
and row. Only one watcher runs per inbox (a lock file), so a reconciling watcher never
races another's step 1-2.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litequeue.base.ids import new_job_id
from litequeue.store.doorbell import ring

from .layout import Layout, token_for
from .moves import free_name, move_noreplace, move_to_free_name, remove_empty_dirs
from .settle import finish_move

if TYPE_CHECKING:
    from ..app import LiteQueue

log = logging.getLogger("litequeue.inbox")


@dataclass
class Staged:
    """A file renamed into its processing folder, not yet recorded."""

    rel: str
    job_id: str
    task: str
    work: Path
    size: int = 0
    sha256: str = ""
    duplicate: bool = False

    @property
    def token(self) -> str:
        return token_for(self.job_id)


def hash_file(path: Path) -> tuple[int, str] | None:
    """Size and SHA-256 of a regular file; None if it is not one (never blocks on a FIFO)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        digest = hashlib.sha256()
        size = 0
        while chunk := os.read(fd, 1 << 20):
            digest.update(chunk)
            size += len(chunk)
        return size, digest.hexdigest()
    finally:
        os.close(fd)


class Taker:
    """Turns files of one inbox into jobs of the app's tasks."""

    def __init__(self, app: LiteQueue, layout: Layout) -> None:
        self.app = app
        self.layout = layout
        self.store = app.storage
        # find_task raises UnknownTaskError: an unknown task is a start-up error
        self.tasks = {rule.task: app.find_task(rule.task) for rule in layout.rules}
        self.processing = layout.root / layout.processing
        self.taken = 0
        self.duplicates = 0

    def take(self, rels: list[str]) -> list[Staged]:
        """Take the inbox files ``rels`` (relative paths); returns those recorded."""
        staged = []
        for rel in rels:
            rule = self.layout.rule_for(rel)
            if rule is None:
                continue
            item = Staged(rel, new_job_id(), rule.task, Path())
            item.work = self.layout.work_path(item.token, rel)
            item.work.parent.mkdir(parents=True, exist_ok=True)
            try:
                move_noreplace(self.layout.root / rel, item.work)
            except FileNotFoundError:  # gone since we looked (taken by hand, deleted)
                remove_empty_dirs(item.work.parent, self.processing)
                continue
            staged.append(item)
        return self.record(staged)

    def record(self, staged: list[Staged]) -> list[Staged]:
        """Hash, dedupe and commit jobs + file rows for files already in their processing
        folders (one transaction), then ring the doorbell and move duplicates away."""
        ready = []
        for item in staged:
            found = self._hash(item)
            if found is None:
                continue
            item.size, item.sha256 = found
            ready.append(item)
        if not ready:
            return []
        if self.layout.dedupe:
            self._mark_duplicates(ready)
        now = time.time()
        jobs, rows = [], []
        for item in ready:
            path = item.work
            job_id: str | None = item.job_id
            state = "processing"
            if item.duplicate:
                dup = self.layout.folder(self.layout.duplicates)
                path, job_id, state = dup / free_name(dup, item.rel), None, "duplicate"
            else:
                task = self.tasks[item.task]((str(item.work),), {}, id=item.job_id)
                if task.expires:
                    task.resolve_expires(self.app.utc)
                new = self.app.new_jobs(task)
                new[0].has_file = True
                jobs.extend(new)
            rows.append((job_id, str(self.layout.root), item.rel, str(path), item.size, item.sha256,
                         state, item.token, now))
        with self.store.write():
            self.store.insert_jobs(jobs, now)
            self.store.many("INSERT INTO lq_inbox_file (job_id, inbox, name, path, size, sha256, state, "
                            "token, taken_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        if jobs:
            ring(self.app.bell_dir)
        self.taken += len(jobs)
        for item, row in zip(ready, rows, strict=True):
            if item.duplicate:
                self.duplicates += 1
                self._move_duplicate(item, Path(row[3]))
            else:
                log.info("took %s as job %s (%s)", item.rel, item.job_id, item.task)
        return ready

    def _hash(self, item: Staged) -> tuple[int, str] | None:
        try:
            found = hash_file(item.work)
        except FileNotFoundError:
            remove_empty_dirs(item.work.parent, self.processing)
            return None
        if found is None:  # swapped for a FIFO or device between our look and the rename
            log.warning("%s is not a regular file; put back, not taken", item.rel)
            move_to_free_name(item.work, self.layout.root, item.rel)
            remove_empty_dirs(item.work.parent, self.processing)
        return found

    def _mark_duplicates(self, items: list[Staged]) -> None:
        hashes = sorted({i.sha256 for i in items})
        known: set[str] = set()
        for start in range(0, len(hashes), 500):
            chunk = hashes[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            known.update(r[0] for r in self.store.sql(
                f"SELECT DISTINCT sha256 FROM lq_inbox_file WHERE inbox = ? AND sha256 IN ({marks}) "
                "AND state IN ('processing', 'done')", [str(self.layout.root), *chunk]).fetchall())
        for item in items:
            item.duplicate = item.sha256 in known
            known.add(item.sha256)

    def _move_duplicate(self, item: Staged, dst: Path) -> None:
        row = self.store.sql("SELECT id FROM lq_inbox_file WHERE token = ?", (item.token,)).fetchone()
        folder = self.layout.folder(self.layout.duplicates)
        finish_move(self.store, row[0], self.layout, item.work, folder,
                    str(dst.relative_to(folder)), item.token)
        log.info("%s is a duplicate (sha256 %s): moved to %s", item.rel, item.sha256[:12], dst)


def retake(taker: Taker, token_dir: Path, store: Any) -> int:
    """Record files a killed watcher renamed into ``token_dir`` but never committed.
    Returns how many got their job (files no rule matches any more go back to the inbox)."""
    from .layout import job_id_of

    layout = taker.layout
    job_id = job_id_of(token_dir.name)
    files = [p for p in token_dir.rglob("*") if p.is_file() and not p.is_symlink()]
    if store.sql("SELECT 1 FROM lq_job WHERE id = ?", (job_id,)).fetchone() is not None:
        log.warning("%s: job %s exists without a file row; left alone", token_dir, job_id)
        return 0
    done = 0
    for i, path in enumerate(files):
        rel = path.relative_to(token_dir).as_posix()
        rule = layout.rule_for(rel)
        if rule is None or i > 0:
            where = move_to_free_name(path, layout.root, rel)
            log.warning("%s: no rule matches it now; put back at %s", rel, where)
            continue
        done += len(taker.record([Staged(rel, job_id, rule.task, path)]))
    remove_empty_dirs(token_dir, taker.processing)
    return done
