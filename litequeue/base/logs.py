"""Where litequeue's log lines go and what they look like: text for people, JSON for shippers.

The worker logs one line when a job starts and one when it ends, passing the facts as
``extra`` fields (action, job_id, task, queue, attempt, duration, outcome). In JSON every
such field becomes a key of the line's object, so a log shipper needs no parsing.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import logging.handlers
import os
import sys
import threading
import time
from typing import Any

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_MARK = "_litequeue_handler"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601 UTC), level, logger, message, pid, the
    record's ``extra`` fields, and ``exc`` (the traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exc"] = record.exc_text
        if record.stack_info:
            data["stack"] = record.stack_info
        return json.dumps(data, default=str, ensure_ascii=False)


class BatchedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes in batches, at most ``interval`` seconds late.

    A consumer logs two lines per job from many worker threads: writing (and flushing)
    each line is a system call that hands the GIL around between the workers, which cost
    more than the jobs themselves. Lines are formatted at once and written together by a
    background thread; warnings and errors are written at once. No thread survives a
    fork: a forked process (a process worker) starts its own writer with its first line,
    and writes what is left when it exits."""

    def __init__(self, stream: Any, interval: float = 0.05) -> None:
        super().__init__(stream)
        self.interval = interval
        self.lines: list[str] = []
        self.wake = threading.Event()
        self.closed = False
        self.writer_pid = 0
        self._start_writer()
        atexit.register(self.flush)
        os.register_at_fork(after_in_child=self._after_fork)

    def _start_writer(self) -> None:
        self.writer_pid = os.getpid()
        self.writer = threading.Thread(target=self._write_loop, name="litequeue-log", daemon=True)
        self.writer.start()

    def _after_fork(self) -> None:
        self.lines = []

    def emit(self, record: logging.LogRecord) -> None:
        if self.writer_pid != os.getpid() and not self.closed:
            with self.lock:  # type: ignore[union-attr]
                if self.writer_pid != os.getpid():
                    self._start_writer()
                    # A worker process leaves through os._exit; multiprocessing's
                    # finalizers still run (registered here: forking clears them).
                    from multiprocessing import util

                    util.Finalize(self, self.flush, exitpriority=100)
        if record.levelno >= logging.WARNING:
            self.flush()
            super().emit(record)
            return
        try:
            line = self.format(record) + self.terminator
        except Exception:  # noqa: BLE001 - logging must never break a job
            self.handleError(record)
            return
        with self.lock:  # type: ignore[union-attr]
            self.lines.append(line)
            first = len(self.lines) == 1
        if first:
            self.wake.set()

    def _write_loop(self) -> None:
        # Sleeps until a line comes (no wake-ups while idle), then gathers lines for
        # ``interval`` and writes them together.
        while not self.closed:
            self.wake.wait()
            self.wake.clear()
            if not self.closed:
                time.sleep(self.interval)
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            lines, self.lines = self.lines, []
            if lines and self.stream is not None:
                self.stream.write("".join(lines))
            super().flush()

    def close(self) -> None:
        self.closed = True
        self.wake.set()
        self.flush()
        super().close()


def level_for(verbose: int = 0, quiet: bool = False) -> int:
    """``-q``: warnings and errors; default: info (one line per job); ``-v``: the same
    with litequeue's debug lines; ``-vv``: debug from every library too."""
    if quiet:
        return logging.WARNING
    return logging.DEBUG if verbose else logging.INFO


def setup(level: int = logging.INFO, fmt: str = "text", logfile: str | os.PathLike[str] | None = None,
          verbose: int = 0) -> logging.Handler:
    """Send log records to stderr, or append them to ``logfile``, in ``fmt``.

    Replaces the handler an earlier call installed (so calling twice is harmless) and
    leaves handlers others installed alone. The log file is reopened when it is moved or
    deleted, so logrotate needs no ``copytruncate``."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    handler: logging.Handler
    if logfile:
        handler = logging.handlers.WatchedFileHandler(os.fspath(logfile), encoding="utf-8")
    else:
        handler = BatchedStreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    setattr(handler, _MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    # -v shows litequeue's own debug lines; only -vv opens the floodgates of other libraries.
    root.setLevel(logging.DEBUG if verbose > 1 else max(level, logging.INFO))
    logging.getLogger("litequeue").setLevel(level)
    # Huey logs its own line per job; ours carry the ledger's facts, so its stay quiet.
    logging.getLogger("huey").setLevel(logging.DEBUG if verbose > 1 else max(level, logging.WARNING))
    return handler


def is_configured() -> bool:
    """True once :func:`setup` installed its handler in this process."""
    return any(getattr(h, _MARK, False) for h in logging.getLogger().handlers)
