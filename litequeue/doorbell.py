"""Wake idle consumers the moment a job is committed, instead of polling with back-off.

Each waiting consumer binds a Unix datagram socket in ``<db>.lq/bell/``; a producer
rings every socket there after its commit. A ring is one tiny datagram; a full socket
buffer means the consumer is already woken, so rings never block. Where there is no
folder (a database server), consumers fall back to a short poll.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
from pathlib import Path


class Doorbell:
    """The consumer's end: a socket to wait on."""

    def __init__(self, folder: Path | None, name: str) -> None:
        self.path: Path | None = None
        self.sock: socket.socket | None = None
        self._r, self._w = os.pipe()  # lets the process wake its own waiters
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
        """Block until rung or ``timeout`` passes; True if rung."""
        fds = [self._r] + ([self.sock.fileno()] if self.sock else [])
        ready, _, _ = select.select(fds, [], [], max(0.0, timeout))
        if not ready:
            return False
        self._drain()
        return True

    def wake(self) -> None:
        """Wake this doorbell's waiter from inside the process."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._w, b"!")

    def _drain(self) -> None:
        os.set_blocking(self._r, False)
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
        for fd in (self._r, self._w):
            with contextlib.suppress(OSError):
                os.close(fd)


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


def ring(folder: Path | None) -> int:
    """Ring every consumer's bell in ``folder``; returns how many heard it."""
    global _sender
    if folder is None:
        return 0
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
