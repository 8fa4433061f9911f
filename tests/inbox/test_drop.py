"""Files dropped by plain writes, write-then-rename and slow writers: each becomes exactly one
job with its full content (real watcher and consumer processes, real folders)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.inbox.helpers import TASKS, effects, files_in, inbox_rows, sha, start_watcher, write_atomic


def slow_write(path: Path, pieces: list[bytes], gap: float, errors: list[str]) -> None:
    """Write ``pieces`` through one open file with ``gap`` seconds between them; record an
    error if the file was taken (moved away) before the writer closed it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        for i, piece in enumerate(pieces):
            if i:
                time.sleep(gap)  # the slowness under test, not a wait for a condition
            os.write(fd, piece)
        mine = os.fstat(fd).st_ino
        try:
            here = os.stat(path).st_ino
        except FileNotFoundError:
            here = None
        if here != mine:
            errors.append(f"{path.name} was taken before its writer closed it")
    finally:
        os.close(fd)


def drop(inbox: Path, staging: Path, plain: int, renamed: int, slow: int, gap: float,
         pieces: int) -> tuple[dict[str, str], list[str]]:
    """Drop files three ways; returns {name: sha256} and the slow writers' errors."""
    expected: dict[str, str] = {}
    errors: list[str] = []
    writers = []
    for i in range(slow):
        parts = [os.urandom(1000 + 37 * j) for j in range(pieces)]
        name = f"slow-{i:04d}.dat"
        expected[name] = sha(b"".join(parts))
        t = threading.Thread(target=slow_write, args=(inbox / name, parts, gap, errors))
        t.start()
        writers.append(t)
    for i in range(max(plain, renamed)):
        if i < plain:
            data = os.urandom(100 + (i * 131) % 70_000)
            name = f"plain-{i:04d}.dat"
            write_atomic(inbox / name, data)
            expected[name] = sha(data)
        if i < renamed:
            data = os.urandom(100 + (i * 71) % 50_000)
            name = f"renamed-{i:04d}.dat"
            # half written beside under a partial name, half outside the inbox
            tmp = inbox / (name + ".part") if i % 2 else staging / name
            write_atomic(tmp, data)
            os.rename(tmp, inbox / name)
            expected[name] = sha(data)
    for t in writers:
        t.join()
    return expected, errors


def check_exactly_once(project, inbox: Path, expected: dict[str, str]) -> None:
    runs = effects(project.root)
    names = [r[0] for r in runs]
    assert len(names) == len(set(names)), "a file was processed twice"
    assert {r[0]: r[1] for r in runs} == expected, "a file was lost or processed with partial content"
    done = files_in(inbox / "done")
    assert sorted(p.name for p in done) == sorted(expected)
    for p in done:
        assert sha(p.read_bytes()) == expected[p.name]
    rows = inbox_rows(project)
    assert len(rows) == len(expected) and {r[1] for r in rows} == {"done"}
    assert project.statuses() == {"succeeded": len(expected)}
    assert files_in(inbox / ".processing") == []
    assert [p.name for p in inbox.iterdir() if p.is_file()] == []


@pytest.mark.parametrize(("project", "mode"), [("sqlite", "inotify"), ("sqlite", "poll"), ("postgres", "inotify")],
                         indirect=["project"])
def test_dropped_files_are_each_processed_once_in_full(project, tmp_path: Path, mode: str) -> None:
    project.write("tasks.py", TASKS)
    inbox, staging = project.root / "inbox", tmp_path / "staging"
    inbox.mkdir()
    staging.mkdir()
    project.start_consumer("tasks", "-w", "4")
    if mode == "inotify":
        # 500 files; slow writers keep one file open and write 6 pieces over 3 s
        watcher = start_watcher(project, inbox, "--rule", "*.dat=ingest")
        counts = dict(plain=200, renamed=200, slow=100, gap=0.6, pieces=6)
    else:
        # polling sees no close events: only size+mtime stable for --settle counts
        watcher = start_watcher(project, inbox, "--rule", "*.dat=ingest", "--poll", "0.2", "--settle", "1")
        counts = dict(plain=30, renamed=20, slow=10, gap=0.3, pieces=11)
    wait_for(lambda: (inbox / ".processing" / ".watcher.lock").exists(), 20, what="the watcher to start")
    expected, errors = drop(inbox, staging, **counts)  # type: ignore[arg-type]
    assert errors == []
    wait_for(lambda: len(files_in(inbox / "done")) >= len(expected), 120,
             what=f"{len(expected)} files in done/ (now {len(files_in(inbox / 'done'))})")
    assert watcher.poll() is None
    check_exactly_once(project, inbox, expected)
