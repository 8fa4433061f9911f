"""Knowing at once that a consumer died: a lock held for life, and a lease behind it.

On one host (SQLite) each consumer holds an exclusive ``flock`` on its own lock file for as
long as it runs; the kernel drops it on SIGKILL or OOM, so any other process can tell a dead
consumer by taking the lock. Claims from before a reboot are recognised by the boot id.

On PostgreSQL each consumer holds a session advisory lock (:class:`SessionLock`, its key
derived from the consumer's id) on a connection of its own: the server drops it the moment
that connection dies (the process was killed, on any host), and every other consumer sees
that in ``pg_locks``. A host that vanishes without closing its connection (power loss, a
network cut) keeps its lock until the server's TCP keepalive gives up, so the heartbeat
lease (``--lease``, recorded on the consumer's row) decides then: past it, the consumer is
dead whatever its lock says.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litequeue.base import defaults

log = logging.getLogger("litequeue.liveness")
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


def lock_key(consumer_id: str) -> int:
    """The advisory-lock key of ``consumer_id``: 62 bits of its hash (non-negative, so
    ``pg_locks``' two 32-bit halves put it back together without a sign)."""
    return int.from_bytes(hashlib.blake2b(consumer_id.encode(), digest_size=8).digest(), "big") >> 2


class SessionLock:
    """A PostgreSQL session advisory lock on ``lock_key(consumer_id)``, held on a connection
    of its own for the consumer's life; the server drops it when that connection dies."""

    def __init__(self, database: Any, consumer_id: str) -> None:
        self.database = database
        self.consumer_id = consumer_id
        self.key = lock_key(consumer_id)
        self.conn: Any = None

    def acquire(self) -> None:
        """Connect and take the lock (raises the driver's error when the server is away)."""
        import psycopg

        self.close()
        conn = psycopg.connect(dbname=self.database.database, autocommit=True,
                               **{k: v for k, v in self.database.connect_params.items() if k != "dbname"})
        try:
            taken = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()[0]
        except Exception:
            conn.close()
            raise
        if not taken:  # only a session of this very consumer id could hold it
            conn.close()
            raise RuntimeError(f"the advisory lock of consumer {self.consumer_id} is held by another session")
        self.conn = conn

    def held(self) -> bool:
        """True while the lock's connection is alive (one round trip)."""
        if self.conn is None or self.conn.closed:
            return False
        try:
            self.conn.execute("SELECT 1")
        except Exception:  # noqa: BLE001 - any failure means the session (and the lock) is gone
            self.close()
            return False
        return True

    def close(self) -> None:
        """Release the lock (closing the session releases it)."""
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None


def session_locks_held(db: Any) -> set[int] | None:
    """Keys of the session advisory locks held in this database now; None on SQLite."""
    from litequeue.ledger.queries import advisory_locks_held

    return advisory_locks_held(db)


#: Why a consumer is dead whose PostgreSQL session ended (its advisory lock went).
SESSION_ENDED = "its database session ended (advisory lock released)"


def process_runs(pid: int) -> bool:
    """True if process ``pid`` of this host is running: not gone, and no zombie (a killed
    process its parent has not reaped yet still answers ``kill(pid, 0)``). False where
    ``/proc`` cannot tell."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"], [])


def consumer_is_dead(host: str, boot: str, pid: int, lock_path: str | None, heartbeat_at: float,
                     lease: float = defaults.HEARTBEAT_LEASE, now: float | None = None,
                     session_lock: bool | None = None) -> str | None:
    """Why the consumer described is dead, or None if it may be alive.

    ``session_lock``: whether its PostgreSQL advisory lock is held (None: not known, as on
    SQLite or for a consumer that holds none)."""
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
    if session_lock is False:
        return SESSION_ENDED
    if now - heartbeat_at > lease:
        return f"no heartbeat for {now - heartbeat_at:.0f}s (lease {lease:g}s)"
    return None


@dataclass
class Verdict:
    """Which registered consumers are alive and which are dead (and why)."""

    #: id -> its registry row (id, hostname, boot_id, pid, lock_path, heartbeat_at, queues)
    alive: dict[str, tuple[Any, ...]]
    #: id -> why it is dead
    dead: dict[str, str]
    #: The dead whose process is seen alive on this host: only their database session
    #: ended (a terminated backend, a restarted server). No worker of theirs died.
    living: set[str] = field(default_factory=set)

    def holder_is_orphaned(self, holder: str) -> bool:
        """True when the holder's consumer is dead or not registered as running at all."""
        base = consumer_of(holder)
        return base in self.dead or base not in self.alive

    def why(self, holder: str) -> str:
        return self.dead.get(consumer_of(holder), "its consumer is not registered")


def judge(db: Any, now: float | None = None, lease: float | None = None,
          skip: str | None = None) -> Verdict:
    """The one dead-consumer test, used by the supervisor, ``health`` and ``doctor``.

    Each consumer is judged by the lease it registered with (``lease`` here: for consumers
    registered without one, default :data:`defaults.HEARTBEAT_LEASE`); on PostgreSQL a
    consumer that registered a lease holds a session lock, and is dead once it is gone."""
    from litequeue.ledger.queries import registered_consumers

    alive: dict[str, tuple[Any, ...]] = {}
    dead: dict[str, str] = {}
    living: set[str] = set()
    rows = registered_consumers(db)
    held = session_locks_held(db) if rows else None  # after the rows: a row seen had its lock
    for row in rows:
        cid, host, boot, pid, lock_path, heartbeat = row[:6]
        own_lease = row[7] if len(row) > 7 else None
        session = None if held is None or own_lease is None else lock_key(cid) in held
        why = None if cid == skip else consumer_is_dead(
            host, boot, pid, lock_path, heartbeat,
            own_lease if own_lease is not None else (lease or defaults.HEARTBEAT_LEASE), now, session)
        if why:
            dead[cid] = why
            if why == SESSION_ENDED and host == hostname() and process_runs(pid):
                living.add(cid)
                dead[cid] = f"{why}, its process lives"
        else:
            alive[cid] = row[:7]
    return Verdict(alive, dead, living)
