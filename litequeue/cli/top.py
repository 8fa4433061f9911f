"""``litequeue top``: the live terminal view of a running queue (queues, running jobs,
consumers, last failures), refreshed every second; ``--once`` prints one frame as text.

A read command: it opens the ledger alone (no Huey, no Flask, no user code) and reads it
through the ledger's queries, which answer in time that does not grow with the ledger.
Only a confirmed ``p`` (pause or resume the queue under the cursor) opens a storage, and
it goes through :func:`litequeue.jobs.actions.pause_queues` / ``resume_queues``, as
``litequeue pause`` and ``resume`` do. The drawing is in :mod:`litequeue.cli.top_view`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import select
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from litequeue.cli.helpers import ledger
from litequeue.cli.root import main

if TYPE_CHECKING:
    import peewee as pw

    from litequeue.cli.top_view import Snapshot, ViewState

#: Failures the frame can list (the newest by enqueue order, shown by when they failed).
FAILURES_READ = 20
#: Running jobs read per frame at most (the count in the title is the whole queue's).
RUNNING_READ = 200


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    return dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC).timestamp()


def database_label(db: pw.Database) -> str:
    """The database, for the title line (never a password)."""
    params = getattr(db, "connect_params", {}) or {}
    if "host" in params or "user" in params:
        return f"{db.database} on {params.get('host', 'localhost')}"
    return str(db.database)


def read_snapshot(db: pw.Database, label: str, rows: int = RUNNING_READ, now: float | None = None) -> Snapshot:
    """Everything one frame shows, from the ledger's own queries (those of ``status``)."""
    from litequeue.cli.top_view import Snapshot
    from litequeue.ledger import queries
    from litequeue.store.liveness import consumer_of

    now = time.time() if now is None else now
    snap = Snapshot(at=now, database=label)
    summary = queries.queue_summary(db, now=now)
    for queue, flow in queries.queue_throughput(db, now=now).items():
        entry = summary.setdefault(queue, {**{s.value: 0 for s in queries.COUNTED}, "paused": False})
        entry.update(flow)
    snap.queues = dict(sorted(summary.items()))
    snap.estimated = any(q.get("estimated") or q.get("rate_estimated") for q in summary.values())
    snap.running_total = sum(q.get("running", 0) for q in summary.values())

    alive = queries.consumers(db, alive_only=True)
    kinds = {c["id"]: c["worker_type"] for c in alive}
    busy: dict[str, int] = {}
    for holder, _queue, n in queries.claims_by_holder(db):
        busy[consumer_of(holder)] = busy.get(consumer_of(holder), 0) + int(n)
    for c in alive:
        c["busy"] = min(busy.get(c["id"], 0), c["concurrency"])
    snap.consumers = alive

    for job in queries.list_jobs(db, status="running", limit=max(1, min(rows, RUNNING_READ))):
        holder = job.get("worker") or ""
        consumer = consumer_of(holder)
        worker = f"pid {holder.rsplit('/', 1)[1]}" if holder != consumer else kinds.get(consumer, "thread")
        snap.running.append({"id": job["id"], "task": job["task"], "queue": job["queue"],
                             "consumer": ":".join(consumer.split(":")[:2]) or "-", "worker": worker,
                             "started_at": _epoch(job.get("started_at")), "progress": job.get("progress")})
    snap.running.sort(key=lambda j: j["started_at"] or now)
    snap.running_total = max(snap.running_total, len(snap.running))

    failed = queries.list_jobs(db, status="failed", limit=FAILURES_READ)
    snap.failures = sorted(({"id": j["id"], "task": j["task"], "error": j.get("error"),
                             "finished_at": _epoch(j.get("finished_at"))} for j in failed),
                           key=lambda f: f["finished_at"] or 0, reverse=True)
    return snap


@main.command()
@click.option("--once", is_flag=True, help="Print one frame as plain text and exit (for scripts).")
@click.option("--interval", type=click.FloatRange(0.1, 60), default=1.0, metavar="SECONDS",
              help="Seconds between refreshes.")
@click.pass_context
def top(ctx: click.Context, once: bool, interval: float) -> None:
    """A live view of the queues: jobs queued, scheduled, running and failed, jobs in and
    out per minute, the running jobs with their progress, the consumers and their
    heartbeats, and the last failures.

    Keys: q (or Ctrl-C) quits; up/down move between queues; p pauses or resumes the queue
    under the cursor, after a y/n confirmation (recorded as `litequeue pause` does).
    """
    db = ledger(ctx)
    label = database_label(db)
    if once:
        _print_once(db, label)
        return
    if not sys.stdout.isatty():
        raise click.UsageError("litequeue top draws on a terminal and stdout is not one; "
                               "use `litequeue top --once` for one frame as text")
    _Live(ctx, db, label, interval).run()


def _print_once(db: pw.Database, label: str) -> None:
    from litequeue.cli.top_view import ViewState, frame_text, render

    width = shutil.get_terminal_size((80, 24)).columns
    lines = os.environ.get("LINES", "")
    height: int | None = int(lines) if lines.isdigit() else None
    if height is None and sys.stdout.isatty():
        height = shutil.get_terminal_size().lines
    snap = read_snapshot(db, label, rows=height or RUNNING_READ)
    if sys.stdout.isatty():
        from rich.console import Console

        Console(width=width).print(render(snap, ViewState(), width, height))
    else:
        click.echo(frame_text(snap, ViewState(), width, height), nl=False)


#: Keys as the terminal sends them (cbreak mode: one read may hold several).
_KEYS = {"\x1b[A": "up", "\x1bOA": "up", "\x1b[B": "down", "\x1bOB": "down", "k": "up", "j": "down"}


def parse_keys(data: str) -> list[str]:
    """The keys in one read: arrows by their escape sequences, anything else one character."""
    keys: list[str] = []
    i = 0
    while i < len(data):
        for seq, name in _KEYS.items():
            if data.startswith(seq, i):
                keys.append(name)
                i += len(seq)
                break
        else:
            if data[i] == "\x1b" and data.startswith("[", i + 1):  # another sequence: skip it
                j = i + 2
                while j < len(data) and not data[j].isalpha() and data[j] != "~":
                    j += 1
                i = j + 1
                continue
            keys.append("escape" if data[i] == "\x1b" else data[i])
            i += 1
    return keys


@contextlib.contextmanager
def cbreak(fd: int) -> Iterator[None]:
    """Keys one at a time, not echoed (Ctrl-C still interrupts); the terminal's own mode
    is put back on the way out, whatever happens."""
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class _Live:
    """The refresh loop: a frame every ``interval`` seconds, and at once after each key."""

    def __init__(self, ctx: click.Context, db: pw.Database, label: str, interval: float) -> None:
        from litequeue.cli.top_view import ViewState

        self.ctx, self.db, self.label, self.interval = ctx, db, label, interval
        self.keys_fd = sys.stdin.fileno() if sys.stdin.isatty() else None
        self.state: ViewState = ViewState(interactive=self.keys_fd is not None)
        self.snap: Snapshot | None = None
        self.pending: tuple[str, str] | None = None  # (pause|resume, queue) awaiting y/n
        self.message_until = 0.0
        self.store: Any = None
        self.wake_r, self.wake_w = os.pipe()

    def run(self) -> None:
        from rich.console import Console
        from rich.live import Live

        console = Console()
        with contextlib.ExitStack() as stack:
            stack.callback(self._close)
            if self.keys_fd is not None:
                stack.enter_context(cbreak(self.keys_fd))
            old = {sig: signal.signal(sig, handler) for sig, handler in (
                (signal.SIGWINCH, lambda *_: os.write(self.wake_w, b"w")),
                (signal.SIGTERM, _exit_on_signal), (signal.SIGHUP, _exit_on_signal))}
            stack.callback(lambda: [signal.signal(s, h) for s, h in old.items()])
            live = stack.enter_context(Live(console=console, screen=True, auto_refresh=False,
                                            redirect_stdout=False, redirect_stderr=False))
            with contextlib.suppress(KeyboardInterrupt):
                self._loop(live)

    def _loop(self, live: Any) -> None:
        next_read = 0.0
        while True:
            if time.monotonic() >= next_read:
                self._read()
                next_read = time.monotonic() + self.interval
            self._draw(live)
            for key in self._wait(max(0.0, next_read - time.monotonic())):
                what = self._key(key)
                if what == "quit":
                    return
                if what == "acted":
                    next_read = 0.0  # show what the pause did at once

    def _read(self) -> None:
        try:
            snap = read_snapshot(self.db, self.label, rows=_size()[1])  # no more running jobs than lines
        except Exception as exc:  # noqa: BLE001 - the view stays up while the database is away
            with contextlib.suppress(Exception):
                self.db.close()
            if self.snap is None:
                from litequeue.cli.top_view import Snapshot

                self.snap = Snapshot(at=time.time(), database=self.label)
            self.snap.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return
        self.snap = snap
        if time.monotonic() > self.message_until:
            self.state.message = None

    def _draw(self, live: Any) -> None:
        from litequeue.cli.top_view import render

        assert self.snap is not None
        width, height = _size()
        live.console.size = (width, height)  # the terminal's size now, whatever COLUMNS says
        live.update(render(self.snap, self.state, width, height), refresh=True)

    def _wait(self, timeout: float) -> list[str]:
        fds = [self.wake_r] + ([self.keys_fd] if self.keys_fd is not None else [])
        ready, _, _ = select.select(fds, [], [], timeout)
        keys: list[str] = []
        if self.wake_r in ready:
            os.read(self.wake_r, 64)
        if self.keys_fd is not None and self.keys_fd in ready:
            data = os.read(self.keys_fd, 64).decode(errors="replace")
            keys = parse_keys(data) if data else ["q"]  # end of input: quit
        return keys

    def _key(self, key: str) -> str | None:
        queues = list(self.snap.queues) if self.snap is not None else []
        if self.pending is not None:
            action, queue = self.pending
            self.pending, self.state.prompt = None, None
            if key in ("y", "Y"):
                self._say(self._act(action, queue))
                return "acted"
            self._say(f"{action} of {queue} not done")
            return None
        if key in ("q", "Q"):
            return "quit"
        if key == "up":
            self.state.cursor = max(0, self.state.cursor - 1)
        elif key == "down":
            self.state.cursor = min(max(0, len(queues) - 1), self.state.cursor + 1)
        elif key in ("p", "P"):
            if not queues:
                self._say("no queue to pause")
                return None
            self.state.clamp(len(queues))
            queue = queues[self.state.cursor]
            action = "resume" if self.snap and self.snap.queues[queue].get("paused") else "pause"
            self.pending = (action, queue)
            self.state.prompt = f"{action.capitalize()} queue {queue}? (y/n)"
        return None

    def _say(self, message: str) -> None:
        self.state.message = message
        self.message_until = time.monotonic() + 5

    def _act(self, action: str, queue: str) -> str:
        """Pause or resume ``queue`` the way ``litequeue pause`` / ``resume`` do (the
        storage, and so Huey, is imported only now)."""
        from litequeue.cli.helpers import store
        from litequeue.jobs import actions

        try:
            if self.store is None:
                self.store = store(self.ctx)
            if action == "pause":
                actions.pause_queues(self.store, [queue])
                return f"paused {queue} until resumed (p again, or `litequeue resume {queue}`)"
            actions.resume_queues(self.store, [queue])
            return f"resumed {queue}"
        except Exception as exc:  # noqa: BLE001 - say it in the view, keep it up
            return f"could not {action} {queue}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"

    def _close(self) -> None:
        for fd in (self.wake_r, self.wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self.store is not None:
            with contextlib.suppress(Exception):
                self.store.close()


def _exit_on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the terminal's restore


def _size() -> tuple[int, int]:
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        size = shutil.get_terminal_size()
    return size.columns, size.lines
