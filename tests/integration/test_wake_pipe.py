"""Issue 11, bug 1: a dispatcher busy for a long time must never leave a worker blocked in
its in-process wake (and with it the dispatcher, on the condition the worker holds)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from litequeue import LiteQueue
from litequeue.runtime.dispatcher import Dispatcher
from litequeue.store.doorbell import Doorbell
from tests.conftest import wait_for

#: More wakes than a Linux pipe holds (64 KiB of one-byte writes).
WAKES = 70_000


def test_wakes_during_a_long_busy_round_never_block_a_worker(tmp_path: Path) -> None:
    app = LiteQueue("wakes", db=tmp_path / "lq.db", busy_timeout=0.05, durability="fast")

    @app.task()
    def job() -> int:
        return 1

    bell = Doorbell(None, "dispatcher")
    stop = threading.Event()
    dispatcher = Dispatcher(app.storage, "c1", None, bell, set, [], None, stop, workers=1)
    dispatcher.start()
    # Another process holds the write lock: the dispatcher's round (a worker is idle, so it
    # wants a job) keeps retrying and never sleeps, so it never drains its wake pipe.
    locker = sqlite3.connect(tmp_path / "lq.db", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(dispatcher.get(30)), daemon=True)
    waiter.start()
    wait_for(lambda: dispatcher.idle == 1 and not dispatcher.sleeping, 5, what="a busy round")

    def idle_workers_asking() -> None:
        for _ in range(WAKES):
            dispatcher.get(0)

    burst = threading.Thread(target=idle_workers_asking, daemon=True)
    burst.start()
    burst.join(10)
    assert not burst.is_alive(), "a worker hung in wake() (the wake pipe filled up while the dispatcher was busy)"
    locker.execute("ROLLBACK")
    locker.close()

    # The dispatcher lives on: the next job reaches the waiting worker.
    r = job()
    waiter.join(20)
    assert got and got[0] is not None and got[0].job_id == r.id  # type: ignore[attr-defined]
    assert dispatcher.close() == []
    assert not dispatcher.thread.is_alive()
    bell.close()
    app.storage.close()


def test_a_stuck_dispatcher_stops_feeding_the_systemd_watchdog(tmp_path: Path, monkeypatch) -> None:
    import socket

    from litequeue.runtime.supervisor import Supervisor

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(0.2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    app = LiteQueue("dog", db=tmp_path / "lq.db", durability="fast")
    bell = Doorbell(None, "dispatcher")
    dispatcher = Dispatcher(app.storage, "c1", None, bell, set, [], None, threading.Event())
    supervisor = Supervisor(app.storage, "c1", None, lambda: 0,
                            progressing=lambda: dispatcher.stalled_for() < 0.3)
    dispatcher.start()
    try:
        supervisor.tick()
        assert sock.recv(64) == b"WATCHDOG=1"
        with dispatcher.cond:  # what a worker blocked while holding it did to the dispatcher
            bell.wake()
            wait_for(lambda: dispatcher.stalled_for() > 0.5, 5, what="the dispatcher to stall")
            supervisor.tick()
            try:
                heard = sock.recv(64)
            except TimeoutError:
                heard = b""
            assert heard == b"", "the watchdog was fed while the dispatcher was stuck"
        wait_for(lambda: dispatcher.stalled_for() < 0.3, 5, what="the dispatcher to turn again")
        supervisor.tick()
        assert sock.recv(64) == b"WATCHDOG=1"
    finally:
        dispatcher.close()
        bell.close()
        sock.close()
        app.storage.close()
