"""Every default in one place, named."""

from __future__ import annotations

DB_PATH = "litequeue.db"
APP_NAME = "litequeue"
QUEUE = "default"
PRIORITY = 0
WORKERS = 1
WORKER_TYPE = "thread"
#: A job whose worker died this many times ends ``failed``.
CRASH_CAP = 3
SHUTDOWN_TIMEOUT = 30.0
#: How long a writer waits for SQLite's write lock before giving up.
BUSY_TIMEOUT = 30.0
#: ``full``: an enqueue that returned survives power loss. ``fast``: it survives
#: a process crash, but the last commits may be lost on power loss.
DURABILITY = "full"
#: How often a consumer writes its heartbeat and looks for dead consumers.
HEARTBEAT_INTERVAL = 1.0
#: A consumer on another host (or one whose lock cannot be seen) is presumed dead after this
#: long without a heartbeat (``run-consumer --lease``, recorded on its row).
HEARTBEAT_LEASE = 30.0
#: The consumer falls back to a poll this often when no doorbell rings; the poll slows
#: down to ``IDLE_POLL_MAX`` while it keeps finding nothing (idle CPU).
IDLE_POLL = 1.0
IDLE_POLL_MAX = 5.0
#: An idle consumer (no job finished since its last heartbeat) writes its heartbeat this
#: often instead of every ``HEARTBEAT_INTERVAL`` (health's default limit is 30 s).
IDLE_HEARTBEAT = 5.0
#: The systemd watchdog is no longer fed once the dispatcher has not turned for this long.
DISPATCHER_STALL = 20.0
#: A running job asked to cancel is stopped after this many seconds unless it stops
#: itself first (``raise_if_cancelled``); ``--cancel-grace`` and ``cancel_grace=`` change it.
CANCEL_GRACE = 10.0
#: An async task that keeps the event loop from running for this long is named in the log.
LOOP_BLOCKED = 1.0
#: Longest a finished job waits for its acknowledgement to be grouped with others.
ACK_GROUP_WINDOW = 0.002
PREVIEW_MAX_CHARS = 200
PREVIEW_MAX_ITEMS = 20
KEEP_SUCCEEDED_DAYS = 7
KEEP_FAILED_DAYS = 30
WEB_HOST = "127.0.0.1"
WEB_PORT = 8642
