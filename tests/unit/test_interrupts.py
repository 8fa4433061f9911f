"""Thread timeouts wait for the database write the thread is inside (issue 11, bug 5)."""

from __future__ import annotations

import threading
import time

from huey.exceptions import TaskTimeout

from litequeue.engine import interrupts


def run_in_thread(body) -> list[str]:
    events: list[str] = []

    def target() -> None:
        try:
            with interrupts.deadline(0.05):
                body(events)
        except TaskTimeout:
            events.append("timeout")

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    return events


def test_a_timeout_firing_inside_a_write_is_raised_as_the_write_ends() -> None:
    def body(events: list[str]) -> None:
        interrupts.enter_write()
        try:
            interrupts.enter_write()  # nested writes: held until the outermost one ends
            try:
                time.sleep(0.2)
            finally:
                interrupts.leave_write()
            events.append("inner write ended")
        finally:
            interrupts.leave_write()
        events.append("went on after the write")

    assert run_in_thread(body) == ["inner write ended", "timeout"]


def test_a_timeout_outside_writes_interrupts_at_once() -> None:
    def body(events: list[str]) -> None:
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            time.sleep(0.001)
        events.append("ran to the end")

    assert run_in_thread(body) == ["timeout"]


def test_a_job_ending_before_its_timeout_is_never_interrupted_later() -> None:
    events = run_in_thread(lambda events: events.append("done"))
    time.sleep(0.1)
    assert events == ["done"]
