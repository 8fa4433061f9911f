"""The watcher: decides *when* a file in the inbox is complete, and hands it to the taker.

A file is complete when:

* the native observer (inotify) reports close-after-write (``FileClosedEvent``) or a rename
  into the inbox (``FileMovedEvent`` to an inbox path) — taken at once;
* otherwise (the polling observer, files found by a rescan, files whose close event was
  lost) its size and mtime have not changed for ``settle`` seconds. With the native
  observer, a file being written (created or modified events, no close yet) is never taken
  by the stability rule until it has been quiet for ``hot_timeout``.

Never taken, and never opened: dotfiles, ``~*``, ``*.part``, ``*.tmp``, ``*.crdownload``,
symlinks (logged once, left alone), FIFOs, sockets and devices (``lstat`` only). Rules are
matched here (``Layout.rule_for``), not by watchdog. The watcher's own folders
(processing, done, failed, duplicates) are never watched or scanned.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

from litequeue.base.errors import ConfigurationError, LiteQueueError

from .layout import LOCK_NAME, Layout, is_ignored_name, save_layout
from .reconcile import reconcile
from .take import Taker

if TYPE_CHECKING:
    from ..app import LiteQueue

log = logging.getLogger("litequeue.inbox")
EVENTS = [FileClosedEvent, FileCreatedEvent, FileModifiedEvent, FileMovedEvent, FileDeletedEvent,
          DirCreatedEvent, DirDeletedEvent, DirMovedEvent]
BATCH = 200


class InboxBusyError(LiteQueueError):
    """Another watcher holds the inbox's lock."""


@dataclass
class Options:
    poll: float | None = None  # seconds between polls; None: the native observer
    settle: float = 1.0
    rescan: float = 30.0
    hot_timeout: float = 60.0
    grace: float = 5.0


@dataclass
class Pending:
    """A file seen but not yet known to be complete."""

    size: int
    mtime: int
    since: float
    hot: bool = False  # native observer: being written (no close event yet)


@dataclass
class Stats:
    taken: int = 0
    duplicates: int = 0
    retaken: int = 0
    job_ids: list[str] = field(default_factory=list)


class _Handler(FileSystemEventHandler):
    def __init__(self, events: queue.SimpleQueue[FileSystemEvent]) -> None:
        self.events = events

    def dispatch(self, event: FileSystemEvent) -> None:
        self.events.put(event)


def inbox_lock(layout: Layout, wait: float = 3.0) -> Any:
    """Hold the inbox's lock file (one watcher per inbox); released when the process dies."""
    folder = layout.root / layout.processing
    folder.mkdir(parents=True, exist_ok=True)
    fh = open(folder / LOCK_NAME, "a+")  # noqa: SIM115 - held for the watcher's life
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                fh.seek(0)
                who = fh.read().strip() or "unknown"
                fh.close()
                raise InboxBusyError(f"another watcher is running on {layout.root} (pid {who}); "
                                     "stop it first, or watch another folder") from None
            time.sleep(0.05)
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


def is_text(rel: str) -> bool:
    """A name the ledger can keep: bytes that are not UTF-8 come back from the filesystem as
    lone surrogates, which no database text column takes (the whole batch's write would fail)."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Watcher:
    """Watches one inbox and takes its complete files (see the module docstring)."""

    def __init__(self, app: LiteQueue, layout: Layout, options: Options | None = None) -> None:
        self.app = app
        self.layout = layout
        self.options = options or Options()
        self.taker = Taker(app, layout)  # raises UnknownTaskError for a rule's unknown task
        self.stop = threading.Event()
        self.events: queue.SimpleQueue[FileSystemEvent] = queue.SimpleQueue()
        self.pending: dict[str, Pending] = {}
        self.ready: set[str] = set()
        self.warned: set[tuple[str, int]] = set()
        self.watches: dict[str, Any] = {}
        self.observer: Any = None
        self.lock: Any = None
        self.stats = Stats()

    # -- life -----------------------------------------------------------------------------

    def start(self) -> None:
        """Lock the inbox, record its layout, repair what a crash left (before any take)."""
        self.layout.root.mkdir(parents=True, exist_ok=True)
        self._check_own_folders()
        self.lock = inbox_lock(self.layout)
        save_layout(self.taker.store, self.layout)
        self.stats.retaken += reconcile(self.taker, self.options.grace).retaken

    def _check_own_folders(self) -> None:
        """The watcher's own folders (processing, done, failed, duplicates) are folders: a file
        dropped under one of those names is refused in one line, before anything is moved."""
        for name in sorted(self.layout.reserved):
            path = self.layout.folder(name)
            if os.path.lexists(path) and not path.is_dir():
                raise ConfigurationError(
                    f"{path} is a file, but the watcher keeps its {name!r} folder there; move the file out of "
                    "the inbox (or choose other names: --processing-dir, --done-dir, --failed-dir, "
                    "--duplicates-dir)")

    def close(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(5)
            self.observer = None
        if self.lock is not None:
            self.lock.close()
            self.lock = None

    def run(self) -> None:
        """Watch until ``stop`` is set."""
        self.start()
        try:
            self._start_observer()
            self.rescan()
            tick = min(0.2, max(0.02, self.options.settle / 5))
            next_rescan = time.monotonic() + self.options.rescan
            while not self.stop.is_set():
                self._drain_events(tick)
                self._check_pending()
                self._take_ready()
                if time.monotonic() >= next_rescan:
                    self.stats.retaken += reconcile(self.taker, self.options.grace).retaken
                    self.rescan()
                    next_rescan = time.monotonic() + self.options.rescan
        finally:
            self.close()

    def oneshot(self, wait: bool = False, timeout: float | None = None) -> dict[str, int]:
        """Take what is in the inbox now (each file once it is stable). With ``wait``, also
        wait until every file taken is settled (done/failed). Returns counts by state of the
        files taken; raises TimeoutError when ``timeout`` passes first."""
        self.start()
        try:
            self.rescan()
            tick = min(0.1, max(0.02, self.options.settle / 5))
            while (self.pending or self.ready) and not self.stop.is_set():
                self._check_pending()
                self._take_ready()
                if self.pending:
                    time.sleep(tick)  # the settle interval itself: nothing else to wait on
            if wait:
                self.wait_settled(self.stats.job_ids, timeout)
            return self.file_states(self.stats.job_ids)
        finally:
            self.close()

    def file_states(self, job_ids: list[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for start in range(0, len(job_ids), 500):
            chunk = job_ids[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            for state, n in self.taker.store.sql(
                    f"SELECT state, COUNT(*) FROM lq_inbox_file WHERE job_id IN ({marks}) GROUP BY state",
                    chunk).fetchall():
                counts[state] = counts.get(state, 0) + n
        return counts

    def wait_settled(self, job_ids: list[str], timeout: float | None) -> None:
        """Wait until no file of ``job_ids`` is processing (consumers settle them; a job no
        consumer settled is settled here after the grace period)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        next_repair = time.monotonic() + self.options.grace
        while not self.stop.is_set():
            if self.file_states(job_ids).get("processing", 0) == 0:
                return
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError
            if time.monotonic() >= next_repair:
                reconcile(self.taker, self.options.grace)
                next_repair = time.monotonic() + self.options.grace
            time.sleep(0.1)  # polling the ledger: consumers in other processes settle the files

    # -- observing ------------------------------------------------------------------------

    def _start_observer(self) -> None:
        if self.options.poll:
            from watchdog.observers.polling import PollingObserver

            self.observer = PollingObserver(timeout=self.options.poll)
        else:
            from watchdog.observers.inotify import InotifyObserver

            # full events: a file moved in from outside is a move (complete), not a create
            self.observer = InotifyObserver(generate_full_events=True)
        self.observer.start()
        self._watch("")

    def _watch(self, rel_dir: str) -> None:
        if self.observer is None or rel_dir in self.watches:
            return
        path = self.layout.root / rel_dir if rel_dir else self.layout.root
        try:
            self.watches[rel_dir] = self.observer.schedule(
                _Handler(self.events), str(path), recursive=False, event_filter=EVENTS)
        except OSError as exc:
            log.warning("cannot watch %s: %s", path, exc)

    def _unwatch(self, rel_dir: str) -> None:
        watch = self.watches.pop(rel_dir, None)
        if watch is not None and self.observer is not None:
            with contextlib.suppress(KeyError, OSError):
                self.observer.unschedule(watch)

    def _rel(self, path: str | bytes) -> str | None:
        """The inbox-relative path of an event path we care about, else None."""
        if not path:
            return None
        text = os.fsdecode(path)
        root = str(self.layout.root)
        if not text.startswith(root + os.sep):
            return None
        rel = text[len(root) + 1:]
        parts = rel.split(os.sep)
        if parts[0] in self.layout.reserved or any(is_ignored_name(p) for p in parts[:-1]):
            return None
        if len(parts) > 1 and not self.layout.recursive:
            return None
        return "/".join(parts)

    def _drain_events(self, timeout: float) -> None:
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            self._on_event(event)
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return

    def _on_event(self, event: FileSystemEvent) -> None:
        now = time.monotonic()
        if event.is_directory:
            if not self.layout.recursive:
                return
            if isinstance(event, DirDeletedEvent):
                rel = self._rel(event.src_path)
                if rel is not None:
                    self._unwatch(rel)
                return
            dest = event.dest_path if isinstance(event, DirMovedEvent) else event.src_path
            rel = self._rel(dest)
            if rel is not None and not is_ignored_name(rel.rsplit("/", 1)[-1]):
                self._watch(rel)
                self.rescan(rel)  # files written before the watch existed
            return
        if isinstance(event, FileMovedEvent):
            src = self._rel(event.src_path)
            if src is not None:
                self.pending.pop(src, None)
                self.ready.discard(src)
            dest = self._rel(event.dest_path)
            if dest is not None:
                self.pending.pop(dest, None)
                self.ready.add(dest)
            return
        rel = self._rel(event.src_path)
        if rel is None:
            return
        if isinstance(event, FileDeletedEvent):
            self.pending.pop(rel, None)
            self.ready.discard(rel)
        elif isinstance(event, FileClosedEvent):
            self.pending.pop(rel, None)
            self.ready.add(rel)
        else:  # created or modified: being written
            self.ready.discard(rel)
            seen = self.pending.get(rel)
            if seen is None:
                self.pending[rel] = Pending(-1, -1, now, hot=not self.options.poll)
            else:
                seen.since, seen.hot = now, not self.options.poll

    # -- deciding -------------------------------------------------------------------------

    def _eligible(self, rel: str) -> os.stat_result | None:
        """The file's lstat if it may be taken (regular, not ignored, a rule matches)."""
        name = rel.rsplit("/", 1)[-1]
        if is_ignored_name(name):
            return None
        try:
            st = os.lstat(self.layout.root / rel)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(st.st_mode):
            if (rel, st.st_ino) not in self.warned:
                self.warned.add((rel, st.st_ino))
                kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
                log.warning("%s is %s: left alone, not taken", rel, kind)
            return None
        if not is_text(rel):
            if (rel, st.st_ino) not in self.warned:
                self.warned.add((rel, st.st_ino))
                log.warning("%s: its name is not UTF-8 text: left alone, not taken (rename it to take it)",
                            ascii(rel)[1:-1])
            return None
        if self.layout.rule_for(rel) is None:
            if (rel, st.st_ino) not in self.warned:
                self.warned.add((rel, st.st_ino))
                log.info("%s matches no rule: left in the inbox", rel)
            return None
        return st

    def _check_pending(self) -> None:
        now = time.monotonic()
        settle, hot_timeout = self.options.settle, self.options.hot_timeout
        for rel, seen in list(self.pending.items()):
            if seen.hot and now - seen.since < hot_timeout:
                continue
            st = self._eligible(rel)
            if st is None:
                del self.pending[rel]
                continue
            if (st.st_size, st.st_mtime_ns) != (seen.size, seen.mtime) or seen.hot:
                seen.size, seen.mtime, seen.since, seen.hot = st.st_size, st.st_mtime_ns, now, False
            elif now - seen.since >= settle:
                del self.pending[rel]
                self.ready.add(rel)

    def _take_ready(self) -> None:
        if not self.ready:
            return
        rels = sorted(r for r in self.ready if self._eligible(r) is not None)
        self.ready.clear()
        for start in range(0, len(rels), BATCH):
            staged = self.taker.take(rels[start:start + BATCH])
            self.stats.job_ids.extend(s.job_id for s in staged if not s.duplicate)
            self.stats.taken += sum(1 for s in staged if not s.duplicate)
            self.stats.duplicates += sum(1 for s in staged if s.duplicate)

    def rescan(self, rel_dir: str = "") -> None:
        """Look at every file (events may have been dropped); new ones wait to be stable."""
        now = time.monotonic()
        for rel in self._walk(rel_dir):
            if rel not in self.pending and rel not in self.ready:
                self.pending[rel] = Pending(-1, -1, now)
        if self.layout.recursive and not rel_dir:
            for gone in [d for d in self.watches if d and not (self.layout.root / d).is_dir()]:
                self._unwatch(gone)

    def _walk(self, rel_dir: str) -> Iterator[str]:
        top = self.layout.root / rel_dir if rel_dir else self.layout.root
        try:
            entries = list(os.scandir(top))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if entry.is_dir(follow_symlinks=False):
                if (self.layout.recursive and not is_ignored_name(entry.name)
                        and not (not rel_dir and entry.name in self.layout.reserved)):
                    self._watch(rel)
                    yield from self._walk(rel)
            elif not is_ignored_name(entry.name):
                yield rel
