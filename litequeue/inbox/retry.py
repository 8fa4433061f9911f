"""``litequeue jobs retry`` on an inbox job moves its file back to where its payload says.

A retried job re-runs the original payload, whose argument is the file's processing path
(``.processing/lq-<first job id>/<rel>``), so the file goes back to exactly that path and
its row is pointed at the new job. ``litequeue.inbox.retry_hooks()`` hands it to
``control.retry_jobs`` (the CLI and the page pass it explicitly).

The previous ``NAME.error.txt`` stays in ``failed/`` as a record; should the file fail
again it gets a fresh, suffixed pair of names there.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .layout import load_layout
from .moves import move_noreplace

log = logging.getLogger("litequeue.inbox")


def move_back(store: Any, old_job_id: str, new_job_id: str) -> None:
    """Move the file of ``old_job_id`` back into its processing folder for ``new_job_id``."""
    row = store.sql("SELECT id, inbox, name, path, token, state FROM lq_inbox_file WHERE job_id = ?",
                    (old_job_id,)).fetchone()
    if row is None:
        return
    row_id, inbox, name, path, token, state = row
    layout = load_layout(store, inbox)
    if layout is None or not token:
        log.warning("job %s: its file's inbox %s has no recorded layout; file left at %s",
                    old_job_id, inbox, path)
        return
    work = layout.work_path(token, name)
    if state != "processing" and Path(path) != work:
        work.parent.mkdir(parents=True, exist_ok=True)
        try:
            move_noreplace(Path(path), work)
        except FileNotFoundError:
            log.warning("job %s: its file %s is gone; the retry will not find it", old_job_id, path)
        except FileExistsError:
            log.warning("job %s: %s already exists; file left at %s", old_job_id, work, path)
            return
    with store.write():
        store.sql("UPDATE lq_inbox_file SET job_id = ?, state = 'processing', path = ?, settled_at = NULL "
                  "WHERE id = ?", (new_job_id, str(work), row_id))
    log.info("file %s back in %s for job %s", name, work, new_job_id)

