"""Noticing that the database path no longer names the file this process opened.

Someone ran ``rm litequeue.db``, or a deploy renamed another database over it: a process
that keeps its open file goes on serving (and heartbeating into) a file nobody else sees,
while producers write to the new one. Each long-running process compares the path's
(device, inode) with the one recorded when it opened the database: at every consumer
heartbeat, every second in ``watch-inbox``, at every request of the status page.

A consumer or watcher that notices it logs one error line naming the path and restarts in
place (``exec`` of its own command line, as SIGHUP does; :mod:`litequeue.runtime.restart`):
the new process opens the file now at the path (creating it if it was deleted), registers
there and serves its jobs. It does not write to the old file again (no drain, no release,
no clean close): the old file's ``-wal`` and ``-shm`` companions sit at the path beside the
new file, and a write or a checkpoint through the old connection could reach the new
database. Claims in the old file go with it. If the restart fails, the process exits 1
and systemd restarts it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from litequeue.store.faults import location


def _ident(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class FileIdentity:
    """The (device, inode) a database path named when this process opened it."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.ident = _ident(self.path)

    @classmethod
    def of(cls, database: Any) -> FileIdentity | None:
        """For a SQLite file database; None for a server or an in-memory database."""
        _, path = location(database)
        if path is None or path == ":memory:" or path == "":
            return None
        return cls(path)

    def check(self) -> str | None:
        """None while the path names the same file; else what happened, in words."""
        if self.ident is None:
            return None
        now = _ident(self.path)
        if now == self.ident:
            return None
        now_names = "no file" if now is None else "another file"
        return (f"database file {self.path} was deleted or replaced while this process had it open "
                f"(the path now names {now_names})")


def watch(identity: FileIdentity | None, on_replaced: Callable[[str], object], stop: threading.Event,
          interval: float = 1.0) -> threading.Thread | None:
    """A daemon thread that calls ``on_replaced(message)`` once the path names another file."""
    if identity is None:
        return None

    def run() -> None:
        while not stop.wait(interval):
            message = identity.check()
            if message is not None:
                on_replaced(message)
                return

    thread = threading.Thread(target=run, name="litequeue-replaced-watch", daemon=True)
    thread.start()
    return thread


def stale_openers(path: str, proc: str = "/proc") -> list[tuple[int, str]]:
    """(pid, command) of the processes on this host that have a file open that was at
    ``path`` but is no longer the file there (deleted, or replaced by another). They serve
    a file nobody else sees. Processes of other users are invisible unless run as root."""
    path = os.path.abspath(path)
    current = _ident(path)
    out = []
    try:
        pids = [int(p) for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return []
    for pid in pids:
        if pid == os.getpid():
            continue
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if target == f"{path} (deleted)":
                stale = True
            elif target == path:
                try:
                    st = os.stat(f"{fd_dir}/{fd}")
                except OSError:
                    continue
                stale = (st.st_dev, st.st_ino) != current
            else:
                continue
            if stale:
                out.append((pid, _command(proc, pid)))
                break
    return out


def _command(proc: str, pid: int) -> str:
    try:
        with open(f"{proc}/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip()[:120]
    except OSError:
        return "?"
