"""sd_notify over a real unix datagram socket, as systemd provides it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from litequeue.base import sdnotify
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    sock.settimeout(10)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def test_messages_reach_the_socket(notify_socket):
    assert sdnotify.ready("consumer up")
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=consumer up"
    assert sdnotify.watchdog()
    assert notify_socket.recv(4096) == b"WATCHDOG=1"
    assert sdnotify.stopping()
    assert notify_socket.recv(4096) == b"STOPPING=1"
    assert sdnotify.status("3 jobs running")
    assert notify_socket.recv(4096) == b"STATUS=3 jobs running"


def test_abstract_socket(monkeypatch):
    name = f"litequeue-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(10)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.ready()
        assert sock.recv(4096) == b"READY=1"


def test_without_systemd_nothing_happens(monkeypatch, tmp_path):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.ready() is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens.sock"))
    assert sdnotify.watchdog() is False  # a failed send is not an error


def test_watchdog_interval(monkeypatch):
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert sdnotify.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert sdnotify.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert sdnotify.watchdog_interval() is None  # meant for another process
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    monkeypatch.setenv("WATCHDOG_USEC", "garbage")
    assert sdnotify.watchdog_interval() is None


def test_a_real_consumer_notifies_ready_watchdog_and_stopping(project, tmp_path):
    if "sdnotify" not in (ROOT / "litequeue" / "runtime" / "consumer.py").read_text() + \
            (ROOT / "litequeue" / "runtime" / "supervisor.py").read_text():
        pytest.skip("the consumer does not call litequeue.base.sdnotify yet")
    project.write("tasks.py", "from litequeue import LiteQueue\napp = LiteQueue('sd')\n"
                              "@app.task()\ndef hello():\n    return 1\n")
    path = tmp_path / "consumer-notify.sock"
    messages: list[bytes] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(0.2)

        def got(prefix: bytes) -> bool:
            try:
                messages.append(sock.recv(4096))
            except TimeoutError:
                pass
            return any(m.startswith(prefix) or b"\n" + prefix in m for m in messages)

        env = {**project.env, "NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"}
        proc = subprocess.Popen([sys.executable, "-m", "litequeue", "run-consumer", "tasks"], cwd=project.root,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        project.procs.append(proc)
        wait_for(lambda: got(b"READY=1"), 30, what="READY=1 from the consumer")
        registered = project.query("SELECT COUNT(*) FROM lq_consumer WHERE status = 'running'")[0][0]
        assert registered == 1  # ready only once it is registered and can take jobs
        wait_for(lambda: got(b"WATCHDOG=1"), 30, what="a watchdog ping")
        proc.terminate()
        wait_for(lambda: got(b"STOPPING=1"), 30, what="STOPPING=1 on SIGTERM")
        assert proc.wait(30) == 0
