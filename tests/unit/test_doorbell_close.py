"""A doorbell closed twice leaves alone the files that took its numbers.

The cancel watcher replaces a bell whose connection broke; while the database is away the new
bell cannot be made, so the old one was closed again on every retry. Its pipe's numbers had
gone to new files by then (a new PostgreSQL connection's socket, in the restart suite), and the
second close closed those: 'could not receive data from server: Bad file descriptor' right after
the server came back, and a fourth 'went away' line for three restarts.
"""

from __future__ import annotations

import contextlib
import os

from litequeue.store.doorbell import Doorbell


def test_closing_a_doorbell_twice_leaves_other_files_alone() -> None:
    bell = Doorbell(None, "twice")
    bell.close()
    r, w = os.pipe()  # the lowest free numbers: the bell's old ones
    try:
        bell.close()
        os.write(w, b"!")
        assert os.read(r, 1) == b"!"
    finally:
        for fd in (r, w):
            with contextlib.suppress(OSError):
                os.close(fd)


def test_a_closed_doorbell_still_answers_wait_and_wake() -> None:
    bell = Doorbell(None, "closed")
    bell.close()
    bell.wake()  # a stop racing the close: nothing to wake, no error
    assert bell.wait(0) is True  # closed: "rung", so a waiter polls instead of sleeping on nothing
