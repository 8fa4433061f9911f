"""Each inbox's counts for ``litequeue status``: waiting, processing, done, failed, duplicate,
and the files no rule matches (they stay in the inbox until a rule does)."""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Iterator
from typing import Any

from .layout import LOCK_NAME, Layout, _sql, all_layouts, is_ignored_name

UNMATCHED_SHOWN = 20


def inbox_summary(db: Any) -> list[dict[str, Any]]:
    """One entry per inbox a watcher has recorded (empty when the inbox was never used)."""
    out = []
    for layout in all_layouts(db):
        counts = {"waiting": 0, "processing": 0, "done": 0, "failed": 0, "duplicate": 0}
        for state, n in _sql(db, "SELECT state, COUNT(*) FROM lq_inbox_file WHERE inbox = ? GROUP BY state",
                             (str(layout.root),)).fetchall():
            counts[state] = n
        unmatched: list[str] = []
        for rel in files_in(layout):
            if layout.rule_for(rel) is None:
                unmatched.append(rel)
            else:
                counts["waiting"] += 1
        out.append({"path": str(layout.root), **counts, "unmatched_count": len(unmatched),
                    "unmatched": sorted(unmatched)[:UNMATCHED_SHOWN],
                    "rules": [f"{r.glob}={r.task}" for r in layout.rules],
                    "watcher_pid": watcher_pid(layout)})
    return out


def files_in(layout: Layout, rel_dir: str = "") -> Iterator[str]:
    """Regular files in the inbox that are not ignored (subfolders with ``recursive``)."""
    top = layout.root / rel_dir if rel_dir else layout.root
    try:
        entries = list(os.scandir(top))
    except OSError:
        return
    for entry in entries:
        if is_ignored_name(entry.name):
            continue
        rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError:
            continue
        if stat.S_ISDIR(mode):
            if layout.recursive and not (not rel_dir and entry.name in layout.reserved):
                yield from files_in(layout, rel)
        elif stat.S_ISREG(mode):
            yield rel


def watcher_pid(layout: Layout) -> int | None:
    """The pid of the watcher holding the inbox's lock, or None when none runs."""
    path = layout.root / layout.processing / LOCK_NAME
    try:
        fh = open(path)  # noqa: SIM115
    except OSError:
        return None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = fh.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fh, fcntl.LOCK_UN)
        return None
