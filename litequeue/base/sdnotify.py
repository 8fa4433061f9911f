"""Tell systemd how a service is doing (``sd_notify``), with no dependency.

systemd gives a ``Type=notify`` service the path of a unix datagram socket in
``$NOTIFY_SOCKET`` (a name starting with ``@`` is an abstract socket). A message is a few
``KEY=VALUE`` lines. Outside systemd the variable is unset and every call here does
nothing, so callers never need to ask first. A failed send is never an error: systemd
itself will notice a service that never becomes ready or stops feeding its watchdog.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("litequeue.sdnotify")


def _address() -> str | None:
    path = os.environ.get("NOTIFY_SOCKET")
    if not path or (path[0] not in "/@"):
        return None
    # An abstract socket's name starts with a NUL byte where systemd writes '@'.
    return "\0" + path[1:] if path[0] == "@" else path


def notify(state: str) -> bool:
    """Send ``state`` (e.g. ``"READY=1\\nSTATUS=running"``) to systemd.

    Returns True when the message was handed to the socket, False when there is no
    ``$NOTIFY_SOCKET`` or the send failed (logged at debug level, never raised)."""
    address = _address()
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        log.debug("sd_notify to %s failed: %s", os.environ.get("NOTIFY_SOCKET"), exc)
        return False
    return True


def ready(status: str | None = None) -> bool:
    """The service finished starting (``READY=1``); systemd starts what waits for it."""
    return notify("READY=1" + (f"\nSTATUS={status}" if status else ""))


def status(text: str) -> bool:
    """A one-line status shown by ``systemctl status``."""
    return notify(f"STATUS={text}")


def stopping(status: str | None = None) -> bool:
    """The service began its graceful stop (``STOPPING=1``)."""
    return notify("STOPPING=1" + (f"\nSTATUS={status}" if status else ""))


def reloading() -> bool:
    """The service is restarting itself in place (litequeue's SIGHUP)."""
    return notify("RELOADING=1")


def watchdog() -> bool:
    """Feed systemd's watchdog (``WATCHDOG=1``); call at least every ``watchdog_interval()``."""
    return notify("WATCHDOG=1")


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings this process should keep (half systemd's
    ``WatchdogSec``), or None when systemd runs no watchdog for this process.

    ``$WATCHDOG_PID``, when set, names the process the watchdog is meant for; any other
    process (a forked worker) gets None."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    if value <= 0:
        return None
    return value / 2_000_000
