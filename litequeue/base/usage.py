"""What an attempt used: its CPU time and the highest resident memory seen while it ran,
measured in the worker that ran it, and the few words that say how much memory that is.

A process worker runs one attempt at a time, so its figures are the attempt's own
(``rss_scope = "job"``): the CPU time of the worker process, and its high-water mark
(``VmHWM``), started again before an attempt by writing ``5`` to
``/proc/self/clear_refs``, so one greedy job does not mark every later one. A thread
worker shares its process with the other workers: its CPU time is its own thread's
(``time.thread_time()``), its memory the consumer process's high-water mark while the
attempt ran (``rss_scope = "consumer"``).

What it costs, per attempt: two clock reads and one or two ``getrusage`` calls (about
5 microseconds measured in a process with 10 threads), none of which lets go of the GIL.
The mark is started again only when it has risen more than :data:`SLACK` since it was last
started: a write to ``clear_refs`` lets go of the GIL, and in a thread consumer every GIL
hand-over between the workers costs more than the write itself (a first version that wrote
on every attempt measured 291 against 238 CPU ms per 1,000 drained jobs, on a loaded
machine). So a figure can include up to ``SLACK`` of an earlier attempt's memory. Where
``/proc`` has no such files (not Linux) the memory figures are None; the CPU time is
still measured.
"""

from __future__ import annotations

import os
import resource
import threading
import time

from litequeue.base.values import Usage

JOB, CONSUMER = "job", "consumer"
#: How far the high-water mark may rise before it is started again (bytes).
SLACK = 4 << 20


class _Proc:
    """This process's high-water mark, and the files that read and reset it, opened once
    per process (again after a fork: the files name the process that opened them).

    The mark is read with ``getrusage`` (under a microsecond, GIL held) where it follows
    ``clear_refs`` as ``VmHWM`` does: checked once per process, at its first reset. Where
    it does not (a kernel that keeps the peak of the memory a process had before its
    ``exec``), ``VmHWM`` is read from ``/proc/self/status`` instead."""

    def __init__(self) -> None:
        self.pid = -1
        self.status: int | None = None
        self.clear: int | None = None
        self.rusage: bool | None = None  # getrusage follows the resets (None: not checked yet)
        self.base = 0  # the mark just after it was last started

    def _open(self) -> None:
        pid = os.getpid()
        if pid == self.pid:
            return
        for fd in (self.status, self.clear):  # a fork's copies of the parent's files
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.pid = pid
        self.status = self.clear = self.rusage = None
        self.base = 0
        try:
            self.status = os.open(f"/proc/{pid}/status", os.O_RDONLY | os.O_CLOEXEC)
            self.clear = os.open(f"/proc/{pid}/clear_refs", os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            pass

    def _vm_hwm(self) -> int | None:
        if self.status is None:
            return None
        try:
            data = os.pread(self.status, 4096, 0)
            at = data.index(b"VmHWM:")
            return int(data[at + 6:data.index(b"kB", at)]) * 1024
        except (OSError, ValueError):
            return None

    def high_water(self) -> int | None:
        """The process's peak resident memory (bytes) since it started or the last reset."""
        self._open()
        if self.rusage:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return self._vm_hwm()

    def reset(self, mark: int | None = None) -> None:
        """Start the high-water mark again from the current resident memory, if it rose
        more than :data:`SLACK` since it was last started (``mark``: it, read just now)."""
        self._open()
        if self.clear is None:
            return
        if mark is None:
            mark = self.high_water()
        if self.rusage is not None and mark is not None and mark <= self.base + SLACK:
            return
        try:
            os.write(self.clear, b"5")
        except OSError:
            self.clear = None
            return
        if self.rusage is None:
            hwm = self._vm_hwm()
            self.rusage = hwm is not None and resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 <= hwm
        self.base = self.high_water() or 0


_proc = _Proc()


class _Shared:
    """The attempts a thread consumer's workers run at once, and the peak each has seen.

    When an attempt ends, the mark so far is carried into every attempt still running,
    then started again (if it rose), so each attempt's peak is the highest the process
    reached while it ran, not the highest of the process's life."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.peaks: dict[int, int] = {}
        self.next = 0

    def begin(self) -> int:
        with self.lock:
            self.next += 1
            self.peaks[self.next] = 0
            return self.next

    def end(self, token: int) -> int | None:
        with self.lock:
            mark = _proc.high_water()
            peak = self.peaks.pop(token, 0)
            if mark is None:
                return None
            for other, seen in self.peaks.items():
                if mark > seen:
                    self.peaks[other] = mark
            _proc.reset(mark)
            return max(peak, mark)


_shared = _Shared()


class Meter:
    """Measures one attempt, started and stopped on the thread that runs it:
    ``meter = Meter(process=True)`` before, ``meter.stop()`` after (always, even when the
    attempt raised)."""

    __slots__ = ("process", "cpu", "token")

    def __init__(self, process: bool) -> None:
        self.process = process
        if process:  # one attempt at a time in this process: its own high-water mark
            _proc.reset()
            self.cpu, self.token = time.process_time(), 0
        else:
            self.cpu, self.token = time.thread_time(), _shared.begin()

    def stop(self) -> Usage:
        if self.process:
            return Usage(time.process_time() - self.cpu, _proc.high_water(), JOB)
        return Usage(time.thread_time() - self.cpu, _shared.end(self.token), CONSUMER)


def resident_bytes(pid: int) -> int | None:
    """How much of process ``pid`` is resident now (bytes), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def size(nbytes: float | None) -> str:
    """Bytes as people read them: ``1.9 GB``, ``210 MB``, ``64 kB`` (powers of 1024)."""
    if nbytes is None:
        return "-"
    value = float(nbytes)
    for unit in ("B", "kB", "MB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit != "MB" or value >= 100 else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.0f} GB" if value >= 100 else f"{value:.1f} GB"
