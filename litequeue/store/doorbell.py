"""Wake idle consumers the moment a job is committed, instead of polling with back-off.

Each waiting consumer binds a Unix datagram socket in ``<db>.lq/bell/``; a producer
rings every socket there after its commit. A ring is one tiny datagram; a full socket
buffer means the consumer is already woken, so rings never block. Where there is no
folder (a database server), consumers fall back to a short poll.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import time
from pathlib import Path
from typing import Any

import peewee as pw

from litequeue.store import faults, outage
from litequeue.store.database import state_dir

#: A folder of bell sockets (SQLite), a PostgreSQL database (LISTEN/NOTIFY), or None.
BellTarget = Path | pw.PostgresqlDatabase | None
CHANNEL = "litequeue"
log = logging.getLogger("litequeue.doorbell")


def bell_target(db_target: str, database: pw.Database) -> BellTarget:
    folder = state_dir(db_target)
    if folder is not None:
        return folder / "bell"
    if isinstance(database, pw.PostgresqlDatabase):
        return database
    return None


class Doorbell:
    """The consumer's end: a socket to wait on."""

    def __init__(self, folder: Path | None, name: str) -> None:
        self.path: Path | None = None
        self.sock: socket.socket | None = None
        # Lets the process wake its own waiters. Non-blocking: a waiter busy for a long time
        # drains nothing, and a full pipe means it has been woken already.
        self._r, self._w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{name}.sock"
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(_address(folder, self.path.name))
        self.sock.setblocking(False)

    def wait(self, timeout: float) -> bool:
        """Block until rung or ``timeout`` passes; True if rung. A closed bell answers
        "rung" after a short pause, so its waiter polls."""
        if self._r < 0:
            time.sleep(min(max(0.0, timeout), 0.2))
            return True
        fds = [self._r] + ([self.sock.fileno()] if self.sock else [])
        ready, _, _ = select.select(fds, [], [], max(0.0, timeout))
        if not ready:
            return False
        self._drain()
        return True

    def wake(self) -> None:
        """Wake this doorbell's waiter from inside the process."""
        if self._w < 0:
            return
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._w, b"!")

    def _drain(self) -> None:
        if self._r < 0:
            return
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._r, 512):
                pass
        if self.sock is not None:
            with contextlib.suppress(BlockingIOError, OSError):
                while self.sock.recv(64):
                    pass

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        # Once only: by a second close, these numbers may be another file's (a new connection's).
        for fd in (self._r, self._w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._r = self._w = -1


_sender: socket.socket | None = None
_dir_fds: dict[str, int] = {}


def _address(folder: Path | str, name: str) -> str:
    """A socket address for ``folder/name`` that fits AF_UNIX's 108-byte limit.

    Deep folders (pytest's temp dirs, long project paths) are reached through an open
    directory descriptor: ``/proc/self/fd/N/name``.
    """
    full = os.path.join(folder, name)
    if len(full.encode()) < 100:
        return full
    key = os.fspath(folder)
    fd = _dir_fds.get(key)
    if fd is None:
        fd = _dir_fds[key] = os.open(key, os.O_RDONLY | os.O_DIRECTORY)
    return f"/proc/self/fd/{fd}/{name}"


def ring(folder: BellTarget) -> int:
    """Ring every consumer's bell (after a commit); returns how many sockets heard it."""
    global _sender
    if folder is None:
        return 0
    if isinstance(folder, pw.PostgresqlDatabase):
        folder.execute_sql(f"NOTIFY {CHANNEL}")
        return 1
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return 0
    if _sender is None:
        _sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        _sender.setblocking(False)
    heard = 0
    for name in names:
        if not name.endswith(".sock"):
            continue
        try:
            _sender.sendto(b"!", _address(folder, name))
            heard += 1
        except BlockingIOError:
            heard += 1  # its buffer is full: it has been rung already
        except OSError as exc:
            if exc.errno == errno.ECONNREFUSED:  # nobody bound: a dead consumer's socket
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))
    return heard


class PgDoorbell(Doorbell):
    """PostgreSQL's LISTEN/NOTIFY as the doorbell, on a connection of its own.

    A lost connection (a terminated backend, a restarted server) is opened again and LISTEN
    re-issued, with back-off; until then, and once right after, every wait answers "rung", so
    the waiter polls and misses no job committed meanwhile."""

    RETRY_MAX = 5.0

    def __init__(self, database: pw.PostgresqlDatabase) -> None:
        super().__init__(None, "")
        self.database = database
        self.conn: Any = None
        self._retry_at = 0.0
        self._delay = 0.1
        self._listen()

    def _listen(self) -> None:
        import psycopg

        params = {k: v for k, v in self.database.connect_params.items() if k != "dbname"}
        self.conn = psycopg.connect(dbname=self.database.database, autocommit=True, **params)
        outage.stamp(self.conn)
        self.conn.execute(f"LISTEN {CHANNEL}")

    def _reconnect(self) -> bool:
        now = time.monotonic()
        if now < self._retry_at:
            return False
        try:
            self._listen()
        except Exception as exc:  # noqa: BLE001 - the server is away: back off, poll meanwhile
            self.conn = None
            self._retry_at = now + self._delay
            self._delay = min(self._delay * 2, self.RETRY_MAX)
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            outage.went_away(faults.location(self.database)[0], reason)
            # While the server is away, the outage's one line says it (litequeue.store.outage).
            log.log(logging.DEBUG if outage.is_away() else logging.WARNING,
                    "doorbell: cannot LISTEN (%s); polling, retrying in %.1fs", reason, self._delay)
            return False
        self._delay = 0.1
        outage.came_back(faults.location(self.database)[0])
        outage.stamp(self.conn)  # opened in the outage that just ended
        log.info("doorbell: LISTEN re-established")
        return True

    def _lost(self, exc: BaseException) -> None:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if faults.is_disconnect(exc):
            outage.went_away(faults.location(self.database)[0], reason, conn=self.conn)
        log.log(logging.DEBUG if outage.is_away() else logging.WARNING,
                "doorbell: its connection was lost (%s); reconnecting", reason)
        with contextlib.suppress(Exception):
            self.conn.close()
        self.conn = None

    def wait(self, timeout: float) -> bool:
        if self._r < 0:  # closed: never LISTEN again
            return super().wait(timeout)
        if self.conn is None or self.conn.closed:
            if not self._reconnect():
                super().wait(min(max(0.0, timeout), 0.2))
            return True  # rung: whatever was committed while nobody listened is polled now
        ready, _, _ = select.select([self._r, self.conn.fileno()], [], [], max(0.0, timeout))
        if not ready:
            return False
        self._drain()
        try:
            for _ in self.conn.notifies(timeout=0):
                pass
        except Exception as exc:  # noqa: BLE001 - the connection died under us
            self._lost(exc)
        return True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.conn is not None:
                self.conn.close()
        super().close()


def make_doorbell(target: BellTarget, name: str) -> Doorbell:
    """The consumer's end of whichever bell ``target`` is."""
    if isinstance(target, pw.PostgresqlDatabase):
        return PgDoorbell(target)
    return Doorbell(target, name)
