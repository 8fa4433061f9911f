"""Progress of long CLI operations (purge, prune, retry --all-failed): a bar on a terminal,
plain lines otherwise (logs, pipes, cron mail), always on stderr so stdout stays parseable.

Use it as a context manager whose value is called with (done, total)::

    with progress("retry", total=len(ids)) as report:
        for i in range(0, len(ids), 500):
            actions.retry_jobs(store, ids[i:i + 500])
            report(min(i + 500, len(ids)))

The reporter has the ``(done, total)`` signature that ``litequeue.jobs.retention.prune`` takes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import click

#: Plain-line mode prints at most one line this often (plus the first and the last).
LINE_INTERVAL = 2.0


class Reporter:
    """Called as ``report(done)`` or ``report(done, total)`` with absolute counts."""

    def __init__(self, label: str, total: int | None, file: TextIO, interactive: bool,
                 interval: float = LINE_INTERVAL) -> None:
        self.label = label
        self.total = total
        self.file = file
        self.interactive = interactive
        self.interval = interval
        self.done = 0
        self._bar: Any = None
        self._last_line = -float("inf")
        self._printed: int | None = None
        self._started = time.monotonic()

    def __call__(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.total = total
        self.done = done
        if self.total == 0:
            return
        if self.interactive:
            self._draw(done)
            return
        now = time.monotonic()
        final = self.total is not None and done >= self.total
        if done != self._printed and (final or now - self._last_line >= self.interval):
            self._line(done)
            self._last_line = now

    def _draw(self, done: int) -> None:
        if self._bar is None:
            if not self.total:
                return
            self._bar = click.progressbar(length=self.total, label=self.label, file=self.file,
                                          show_pos=True, show_eta=True)
            self._bar.__enter__()
        if self.total and self._bar.length != self.total:
            self._bar.length = self.total
        self._bar.update(done - self._bar.pos)

    def _line(self, done: int) -> None:
        if self.total:
            text = f"{self.label}: {done}/{self.total} ({100.0 * done / self.total:.0f}%)"
        else:
            text = f"{self.label}: {done}"
        click.echo(text, file=self.file)
        self._printed = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
        elif not self.interactive and self.total != 0 and self.done != self._printed:
            self._line(self.done)


@contextmanager
def progress(label: str, total: int | None = None, *, file: TextIO | None = None,
             interactive: bool | None = None, interval: float = LINE_INTERVAL) -> Iterator[Reporter]:
    """A reporter for one long operation; ``interactive`` defaults to "is ``file`` a terminal"."""
    out = file if file is not None else sys.stderr
    if interactive is None:
        interactive = out.isatty()
    reporter = Reporter(label, total, out, interactive, interval)
    try:
        yield reporter
    finally:
        reporter.close()
