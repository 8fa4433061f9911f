"""Live refreshes share their reads: however many open pages poll the same JSON, the ledger
is read once per URL and interval.

Each open page's script fetches its JSON twin every few seconds with the header
``X-Litequeue-Live: 1``. Fifty open pages were fifty read transactions back to back, and on
SQLite a reader that is always there keeps the WAL from ever being checkpointed back to the
start: with 50 pages polling during a drain it grew to 470 MB (5 MB without them) and every
writer and reader slowed down. A live refresh now gets the body another page's refresh of
the same URL read less than ``max_age`` ago (at most a third of the refresh interval), or
waits for the one read in flight; any action (a POST) drops every shared body, so a page
shows its own action's effect at once. Requests without the header (a page load, a
script reading the JSON API) always read the ledger.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from flask import Blueprint, Response, g, request

HEADER = "X-Litequeue-Live"
#: How long a refresh waits for another's read of the same URL before reading itself.
WAIT = 10.0


@dataclass
class _Entry:
    done: threading.Event = field(default_factory=threading.Event)
    body: bytes | None = None
    at: float = 0.0


class SharedReads:
    """Bodies of live refreshes by URL, each kept ``max_age`` seconds."""

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def claim(self, key: str) -> tuple[_Entry, bool]:
        """The entry for ``key``, and whether the caller must read it (True) or may wait
        for it (False: fresh, or being read by another request now)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and (not entry.done.is_set() or time.monotonic() - entry.at < self.max_age):
                return entry, False
            entry = self._entries[key] = _Entry()
            return entry, True

    def fill(self, key: str, entry: _Entry, body: bytes | None) -> None:
        """The read is over: ``body`` for the others (None: it failed, they read themselves)."""
        with self._lock:
            entry.body, entry.at = body, time.monotonic()
            if body is None and self._entries.get(key) is entry:
                del self._entries[key]
        entry.done.set()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def install(bp: Blueprint, refresh_seconds: float) -> SharedReads:
    """Serve the blueprint's live refreshes through one :class:`SharedReads` (registered
    after the security guard, so a refresh is checked before it is answered)."""
    shared = SharedReads(max_age=min(1.0, refresh_seconds / 3))

    @bp.before_request
    def shared_body() -> Response | None:
        if request.method != "GET" or request.headers.get(HEADER) != "1":
            return None
        key = request.full_path
        entry, mine = shared.claim(key)
        if not mine and entry.done.wait(WAIT) and entry.body is not None:
            return Response(entry.body, 200, mimetype="application/json")
        if mine:
            g.litequeue_shared = (key, entry)
        return None

    @bp.after_request
    def share(response: Response) -> Response:
        if request.method == "POST":
            shared.clear()
        claimed = g.pop("litequeue_shared", None)
        if claimed is not None:
            ok = response.status_code == 200 and response.mimetype == "application/json"
            shared.fill(*claimed, response.get_data() if ok else None)
        return response

    @bp.teardown_request
    def release(_exc: BaseException | None) -> None:
        claimed = g.pop("litequeue_shared", None)
        if claimed is not None:  # the view raised: the others read for themselves
            shared.fill(*claimed, None)

    return shared
