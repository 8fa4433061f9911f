"""What ``litequeue top`` draws: one frame from a :class:`Snapshot`, fitted to a terminal's size.

Pure rendering (no database, no terminal): :func:`render` turns a snapshot and the view's
state (cursor, prompt, last message) into a rich renderable of at most ``height`` lines,
each at most ``width`` columns; :func:`frame_text` gives the same frame as plain text.

rich, not textual: ``top`` is one table view refreshed every second, and rich draws it
with a ``Live`` and ``Table`` in a fraction of textual's import time, without an app
framework's event loop around the CLI, and renders the very same frame as plain text for
``--once`` (no escape codes when stdout is not a terminal).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from litequeue.base import defaults

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

#: A consumer whose heartbeat is older than this is marked stale (it missed three of the
#: heartbeats an idle consumer writes; health calls it degraded at 30 s).
STALE_AFTER = 3 * defaults.IDLE_HEARTBEAT
#: Lines a frame spends on other things than rows: the title line, each section's title and
#: header (4 sections), and the line of keys / the prompt at the bottom.
_FIXED_LINES = 1 + 4 * 2 + 1
#: Rows a section shows when the height is not limited (``--once`` into a pipe).
UNLIMITED_ROWS = 50
#: Terminals at least this wide show whole job ids (else their last 8 characters).
WIDE = 120
BAR = 10


@dataclass
class Snapshot:
    """What one frame shows, read from the ledger at ``at`` (see ``top.read_snapshot``)."""

    at: float
    database: str
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)
    estimated: bool = False
    running: list[dict[str, Any]] = field(default_factory=list)
    running_total: int = 0
    consumers: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


@dataclass
class ViewState:
    """What the person at the terminal did: the queue under the cursor, a question asked."""

    cursor: int = 0
    prompt: str | None = None
    message: str | None = None
    interactive: bool = False

    def clamp(self, queues: int) -> None:
        self.cursor = max(0, min(self.cursor, queues - 1))


def span(seconds: float | None) -> str:
    """A duration in at most 6 characters: 4.2s, 3m05s, 2h10m, 3d04h."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def clock(ts: float | None) -> str:
    """Local time of day of ``ts`` (the date too when it is not today)."""
    if ts is None:
        return "-"
    when = dt.datetime.fromtimestamp(ts)
    if when.date() == dt.date.today():
        return when.strftime("%H:%M:%S")
    return when.strftime("%m-%d %H:%M")


def bar(percent: float) -> str:
    filled = round(BAR * max(0.0, min(100.0, percent)) / 100)
    return "█" * filled + "░" * (BAR - filled)


def budget(needs: list[int], available: int) -> list[int]:
    """Rows for each section: one each at least, then one at a time to the sections that
    still have rows to show, in turn (so no section starves the others)."""
    rows = [1] * len(needs)
    left = available - len(needs)
    while left > 0:
        grew = False
        for i, need in enumerate(needs):
            if left > 0 and rows[i] < need:
                rows[i] += 1
                left -= 1
                grew = True
        if not grew:
            break
    return rows


def _empty(title: str, text: str) -> RenderableType:
    """A section with nothing to list: its title and one plain line saying so."""
    from rich.console import Group
    from rich.text import Text

    return Group(Text(title, style="bold", no_wrap=True, overflow="ellipsis"),
                 Text(text, style="dim", no_wrap=True, overflow="ellipsis"))


def _table(title: str, width: int) -> Table:
    from rich.table import Table

    return Table(title=title, title_justify="left", title_style="bold", box=None, show_edge=False,
                 pad_edge=False, padding=(0, 1), expand=True, width=width, header_style="bold")


def _fit(rows: list[Any], shown: int) -> tuple[list[Any], int]:
    """The rows that fit in ``shown`` lines and how many are left out (a last line says so)."""
    if len(rows) <= shown:
        return rows, 0
    return rows[:max(0, shown - 1)], len(rows) - max(0, shown - 1)


def _short(job_id: str, width: int) -> str:
    return job_id if width >= WIDE else job_id[-8:]


def queues_table(snap: Snapshot, state: ViewState, width: int, shown: int) -> RenderableType:
    if not snap.queues:
        return _empty("QUEUES 0", "no jobs yet")
    t = _table(f"QUEUES {len(snap.queues)}", width)
    t.add_column("QUEUE", ratio=1, no_wrap=True, overflow="ellipsis", min_width=8)
    for name in ("QUEUED", "SCHED", "RUN", "RETRY", "FAIL", "IN/m", "OUT/m"):
        t.add_column(name, justify="right", no_wrap=True)
    t.add_column("STATE", no_wrap=True, min_width=6)
    names = list(snap.queues)
    visible, more = names, 0
    if len(names) > shown:  # a window of rows that holds the cursor, and a line for the rest
        room = max(1, shown - 1)
        start = max(0, min(state.cursor - room + 1, len(names) - room))
        visible = names[start:start + room]
        more = len(names) - room if shown > 1 else 0
    for name in visible:
        q = snap.queues[name]
        est = q.get("estimated", ())

        def n(key: str, q: dict[str, Any] = q, est: Any = est) -> str:
            return f"~{q.get(key, 0)}" if key in est else str(q.get(key, 0))

        def rate(key: str, q: dict[str, Any] = q) -> str:
            return f"~{q.get(key, 0)}" if key in q.get("rate_estimated", ()) else str(q.get(key, 0))

        selected = state.interactive and name == names[state.cursor]
        label = ("> " if selected else "  " if state.interactive else "") + name
        t.add_row(label, n("queued"), n("scheduled"), n("running"), n("retrying"), n("failed"),
                  rate("in"), rate("out"), "paused" if q.get("paused") else "",
                  style="reverse" if selected else None)
    if more:
        t.add_row(f"… {more} more", *[""] * 8)
    return t


def running_table(snap: Snapshot, width: int, shown: int) -> RenderableType:
    if not snap.running:
        return _empty("RUNNING 0", "no job is running")
    t = _table(f"RUNNING {snap.running_total}", width)
    t.add_column("ID", no_wrap=True, overflow="ellipsis", min_width=8)
    t.add_column("TASK", ratio=2, no_wrap=True, overflow="ellipsis", min_width=6)
    t.add_column("CONSUMER", ratio=2, no_wrap=True, overflow="ellipsis", min_width=8)
    t.add_column("WORKER", no_wrap=True, overflow="ellipsis")
    t.add_column("TIME", justify="right", no_wrap=True)
    t.add_column("PROGRESS", no_wrap=True, min_width=BAR + 5)
    rows, more = snap.running, 0
    if len(snap.running) > shown or snap.running_total > len(snap.running):
        rows = snap.running[:max(0, shown - 1)]
        more = max(snap.running_total, len(snap.running)) - len(rows)
    for job in rows:
        p = job.get("progress")
        progress = ""
        if p and p.get("percent") is not None:
            progress = f"{bar(p['percent'])} {p['percent']:.0f}%"
        elif p:
            progress = f"{p['done']:g} done"
        t.add_row(_short(job["id"], width), job["task"], job["consumer"], job["worker"],
                  span(snap.at - job["started_at"]) if job.get("started_at") else "-", progress)
    if more:
        t.add_row(f"… {more} more", *[""] * 5)
    return t


def consumers_table(snap: Snapshot, width: int, shown: int) -> RenderableType:
    if not snap.consumers:
        return _empty("CONSUMERS 0", "no consumer is running")
    t = _table(f"CONSUMERS {len(snap.consumers)}", width)
    t.add_column("HOST", ratio=2, no_wrap=True, overflow="ellipsis", min_width=8)
    t.add_column("PID", justify="right", no_wrap=True)
    t.add_column("BUSY", justify="right", no_wrap=True)
    t.add_column("KIND", no_wrap=True)
    t.add_column("QUEUES", ratio=2, no_wrap=True, overflow="ellipsis")
    t.add_column("HEARTBEAT", no_wrap=True, min_width=15)
    rows, more = _fit(snap.consumers, shown)
    for c in rows:
        age = c["heartbeat_age_s"]
        beat = f"{span(age)} ago" + (" STALE" if age > STALE_AFTER else "")
        t.add_row(c["hostname"], str(c["pid"]), f"{c['busy']}/{c['concurrency']}", c["worker_type"],
                  ",".join(c["queues"]) or "all", beat,
                  style="bold red" if age > STALE_AFTER else None)
    if more:
        t.add_row(f"… {more} more", *[""] * 5)
    return t


def failures_table(snap: Snapshot, width: int, shown: int) -> RenderableType:
    if not snap.failures:
        return _empty("LAST FAILURES", "none")
    t = _table("LAST FAILURES", width)
    t.add_column("WHEN", no_wrap=True)
    t.add_column("ID", no_wrap=True, overflow="ellipsis", min_width=8)
    t.add_column("TASK", ratio=1, no_wrap=True, overflow="ellipsis", min_width=6)
    t.add_column("ERROR", ratio=3, no_wrap=True, overflow="ellipsis", min_width=10)
    rows = snap.failures[:shown]
    for f in rows:
        error = (f.get("error") or "").strip().splitlines()
        t.add_row(clock(f.get("finished_at")), _short(f["id"], width), f["task"], error[0] if error else "")
    return t


def _title(snap: Snapshot, width: int) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(snap.at))
    left = "litequeue top"
    right = f"{snap.database}  {stamp}"
    room = width - len(left) - 2
    if len(right) > room:
        right = "…" + right[-(room - 1):] if room > 1 else ""
    return left + " " * max(2, width - len(left) - len(right)) + right


def _bottom(snap: Snapshot, state: ViewState) -> str:
    if state.prompt:
        return state.prompt
    if snap.error:
        return f"database error: {snap.error}"
    if state.message:
        return state.message
    notes = []
    if snap.estimated:
        notes.append("~ estimated")
    if state.interactive:
        notes.append("q quit  ↑↓ queue  p pause/resume")
    return "  ".join(notes)


def render(snap: Snapshot, state: ViewState, width: int, height: int | None) -> RenderableType:
    """The frame: title, queues, running jobs, consumers, last failures, keys or prompt."""
    from rich.console import Group
    from rich.text import Text

    state.clamp(len(snap.queues))
    needs = [max(1, len(snap.queues)), max(1, len(snap.running) + (snap.running_total > len(snap.running))),
             max(1, len(snap.consumers)), max(1, len(snap.failures))]
    if height is None:
        rows = [min(n, UNLIMITED_ROWS) for n in needs]
    else:
        rows = budget(needs, height - _FIXED_LINES)
    parts: list[RenderableType] = [
        Text(_title(snap, width), style="bold", no_wrap=True, overflow="ellipsis"),
        queues_table(snap, state, width, rows[0]),
        running_table(snap, width, rows[1]),
        consumers_table(snap, width, rows[2]),
        failures_table(snap, width, rows[3]),
    ]
    bottom = _bottom(snap, state)
    style = "bold yellow" if state.prompt else "red" if snap.error else "dim"
    if bottom or state.interactive:
        parts.append(Text(bottom, style=style, no_wrap=True, overflow="ellipsis"))
    return Group(*parts)


def frame_lines(snap: Snapshot, state: ViewState, width: int, height: int | None) -> list[str]:
    """The frame as plain lines (no escape codes), cut to ``height`` lines."""
    from rich.console import Console

    console = Console(width=width, color_system=None, force_terminal=False, no_color=True,
                      legacy_windows=False, highlight=False)
    lines = console.render_lines(render(snap, state, width, height), console.options.update(width=width),
                                 pad=False)
    text = ["".join(seg.text for seg in line).rstrip() for line in lines]
    return text if height is None else text[:height]


def frame_text(snap: Snapshot, state: ViewState, width: int, height: int | None) -> str:
    return "\n".join(frame_lines(snap, state, width, height)) + "\n"
