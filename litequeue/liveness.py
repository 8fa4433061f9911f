"""Knowing at once that a consumer died, on one host: a file lock held for life.

Each consumer holds an exclusive ``flock`` on its own lock file for as long as it runs;
the kernel drops it on SIGKILL or OOM, so any other process can tell a dead consumer by
taking the lock. Claims from before a reboot are recognised by the boot id. Consumers on
other hosts (a database server) fall back to a heartbeat lease.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import defaults

_BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"


def boot_id() -> str:
    try:
        with open(_BOOT_ID_FILE) as fh:
            return fh.read().strip()
    except OSError:
        return "unknown"


def hostname() -> str:
    return socket.gethostname()


def new_consumer_id() -> str:
    return f"{hostname()}:{os.getpid()}:{secrets.token_hex(3)}"


#: A claim's holder is ``CONSUMER`` (thread workers share the consumer's claims) or
#: ``CONSUMER/PID`` (a process worker holds its own). These three functions are the only
#: places that know the format.
_HOLDER_SEP = "/"


def holder_of(consumer_id: str, pid: int | None = None) -> str:
    """The holder name claims of ``consumer_id`` (or of its worker process ``pid``) carry."""
    return consumer_id if pid is None else f"{consumer_id}{_HOLDER_SEP}{pid}"


def consumer_of(holder: str) -> str:
    """The consumer a holder belongs to."""
    return holder.split(_HOLDER_SEP, 1)[0]


def holder_pattern(consumer_id: str) -> str:
    """A SQL ``LIKE`` pattern matching the holders of ``consumer_id``'s worker processes."""
    return f"{consumer_id}{_HOLDER_SEP}%"


@dataclass
class LifeLock:
    """An exclusive lock on ``path`` held by this process until it exits."""

    path: Path
    fd: int = -1

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.set_inheritable(self.fd, True)  # forked workers keep it held while they live

    def release(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                self.path.unlink()
            os.close(self.fd)
            self.fd = -1


def lock_is_free(path: str | os.PathLike[str]) -> bool:
    """True if nobody holds the lock at ``path`` (its owner is dead)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def consumer_is_dead(host: str, boot: str, pid: int, lock_path: str | None, heartbeat_at: float,
                     lease: float = defaults.HEARTBEAT_LEASE, now: float | None = None) -> str | None:
    """Why the consumer described is dead, or None if it may be alive."""
    now = time.time() if now is None else now
    if host == hostname():
        if boot != boot_id():
            return "its host rebooted"
        if lock_path:
            return "its process is gone (lock released)" if lock_is_free(lock_path) else None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "its process is gone"
        except PermissionError:
            pass
    if now - heartbeat_at > lease:
        return f"no heartbeat for {now - heartbeat_at:.0f}s"
    return None


@dataclass
class Verdict:
    """Which registered consumers are alive and which are dead (and why)."""

    #: id -> its registry row (id, hostname, boot_id, pid, lock_path, heartbeat_at, queues)
    alive: dict[str, tuple[Any, ...]]
    #: id -> why it is dead
    dead: dict[str, str]

    def holder_is_orphaned(self, holder: str) -> bool:
        """True when the holder's consumer is dead or not registered as running at all."""
        base = consumer_of(holder)
        return base in self.dead or base not in self.alive

    def why(self, holder: str) -> str:
        return self.dead.get(consumer_of(holder), "its consumer is not registered")


def judge(db: Any, now: float | None = None, lease: float = defaults.HEARTBEAT_LEASE,
          skip: str | None = None) -> Verdict:
    """The one dead-consumer test, used by the supervisor, ``health`` and ``doctor``."""
    from .ledger.queries import registered_consumers

    alive: dict[str, tuple[Any, ...]] = {}
    dead: dict[str, str] = {}
    for row in registered_consumers(db):
        cid, host, boot, pid, lock_path, heartbeat = row[:6]
        why = None if cid == skip else consumer_is_dead(host, boot, pid, lock_path, heartbeat, lease, now)
        if why:
            dead[cid] = why
        else:
            alive[cid] = row
    return Verdict(alive, dead)
