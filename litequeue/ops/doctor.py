"""``litequeue doctor``: the human check-up of one installation.

Each check returns findings (``ok``, ``info``, ``warn``, ``fail``) grouped by topic:
config sources, the APP import, the database (path, filesystem, SQLite version, journal
mode), inotify limits, the inbox folders, stale consumers and orphaned claims, and the
``health`` answer. Nothing here changes the queue: the only write is health's no-op
update.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import peewee as pw

from litequeue.base.errors import LiteQueueError
from litequeue.base.secrets import redact
from litequeue.ops import health
from litequeue.store.database import database_target, sqlite_path
from litequeue.store.liveness import judge

if TYPE_CHECKING:
    from litequeue.cli.config import ConfigFile

OK, INFO, WARN, FAIL = "ok", "info", "warn", "fail"
#: Filesystems where SQLite's locks cannot be trusted (or are not shared between hosts).
NETWORK_FS = {"nfs", "nfs4", "cifs", "smb", "smb3", "smbfs", "ncpfs", "afs", "9p", "ceph", "glusterfs",
              "lustre", "gpfs", "ocfs2", "gfs2", "beegfs", "davfs", "sshfs", "virtiofs", "vboxsf",
              "prl_fs", "vmhgfs"}
#: RETURNING (claims, acks) needs SQLite 3.35.
MIN_SQLITE = (3, 35, 0)
INOTIFY = "/proc/sys/fs/inotify"
INBOX_FOLDERS = (".processing", "done", "failed", "duplicates")


@dataclass
class Finding:
    level: str
    topic: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"level": self.level, "topic": self.topic, "message": self.message}


# -- config -------------------------------------------------------------------------------

def check_config(config: ConfigFile, settings: Mapping[str, Any], sources: Mapping[str, str],
                 environ: Mapping[str, str] | None = None) -> list[Finding]:
    """Which config file is in effect and where each top-level setting came from."""
    env = os.environ if environ is None else environ
    out = []
    if config.path is None:
        out.append(Finding(INFO, "config", "no config file (looked for ./litequeue.toml and "
                                           "[tool.litequeue] in ./pyproject.toml)"))
    else:
        out.append(Finding(OK, "config", f"config file: {config.label} (chosen by {config.origin})"))
        tables = [k for k, v in config.data.items() if isinstance(v, dict)]
        for table in tables:
            out.append(Finding(INFO, "config", f"[{table}] sets {', '.join(config.data[table]) or 'nothing'}"))
    for name, value in settings.items():
        if name == "db" and value is None:
            value = database_target(None)
        if sources.get(name, "default") == "default" and name != "db":
            continue
        out.append(Finding(INFO, "config", f"{name.replace('_', '-')} = {redact(value)} "
                                           f"(from {sources.get(name, 'default')})"))
    names = sorted(k for k in env if k.startswith("LITEQUEUE_"))
    if names:
        out.append(Finding(INFO, "config", "environment: " + ", ".join(
            f"{k}={redact(env[k])}" for k in names)))
    return out


# -- the user's app ----------------------------------------------------------------------

def check_app(spec: str | None, db_target: str) -> list[Finding]:
    """Import APP as the consumer would; say what it registers and which database it uses."""
    if not spec:
        return [Finding(INFO, "app", "no APP configured (set --app, LITEQUEUE_APP or app = in the "
                                     "config file) to check that it imports")]
    from litequeue.ops.loader import load_app

    try:
        app = load_app(spec)
    except LiteQueueError as exc:
        return [Finding(FAIL, "app", str(exc))]
    tasks = app.task_names()
    out = [Finding(OK, "app", f"{spec} imports: app {app.name!r}, {len(tasks)} task(s)")]
    if not _same_db(app.db_target, db_target):
        out.append(Finding(WARN, "app", f"{spec} uses database {redact(app.db_target)}, but this "
                                        f"command looked at {redact(db_target)}; set LITEQUEUE_DB the same "
                                        "for producers, consumers and the CLI"))
    return out


def _same_db(a: str, b: str) -> bool:
    pa, pb = sqlite_path(a), sqlite_path(b)
    if pa is not None and pb is not None:
        return os.path.realpath(pa) == os.path.realpath(pb)
    return a == b


# -- database ------------------------------------------------------------------------------

def mount_of(path: str | os.PathLike[str], mounts: str = "/proc/mounts") -> tuple[str, str, str] | None:
    """(mount point, filesystem type, source) of the mount holding ``path``."""
    target = os.path.realpath(path)
    best: tuple[str, str, str] | None = None
    try:
        with open(mounts) as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        source, point, fstype = (_unescape(p) for p in parts[:3])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[0])):
            best = (point, fstype, source)
    return best


def _unescape(field: str) -> str:
    # /proc/mounts writes space, tab, newline and backslash as \040, \011, \012, \134.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def is_network_fs(fstype: str) -> bool:
    return fstype in NETWORK_FS or fstype.startswith("fuse") or fstype.split(".")[0] in NETWORK_FS


def check_filesystem(path: str, what: str, topic: str, mounts: str = "/proc/mounts") -> list[Finding]:
    found = mount_of(path, mounts)
    if found is None:
        return [Finding(INFO, topic, f"{what}: filesystem unknown (no {mounts})")]
    point, fstype, source = found
    if is_network_fs(fstype):
        return [Finding(WARN, topic, f"{what} is on {fstype} ({source} at {point}), a network or FUSE "
                                     "filesystem where SQLite's locking is unsafe: keep the database on a "
                                     "local disk, or use PostgreSQL (LITEQUEUE_DB=postgresql://...)")]
    return [Finding(OK, topic, f"{what} is on {fstype} ({point}), a local filesystem")]


def check_database(target: str | None, mounts: str = "/proc/mounts") -> list[Finding]:
    """Where the database is, what holds it, and how SQLite runs it."""
    name = database_target(target)
    out = []
    version = tuple(int(x) for x in sqlite3.sqlite_version.split("."))
    path = sqlite_path(name)
    if path is None:
        out.append(Finding(INFO, "database", f"database URL {redact(name)} (server database)"))
        out += _server_version(name)
        return out
    path = os.path.abspath(path)
    level = OK if version >= MIN_SQLITE else FAIL
    need = "" if level == OK else f"; litequeue needs {'.'.join(map(str, MIN_SQLITE))} or newer"
    out.append(Finding(level, "database", f"SQLite library {sqlite3.sqlite_version}{need}"))
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        out.append(Finding(FAIL, "database", f"folder {folder} of database {path} does not exist"))
        return out
    out += check_filesystem(folder, f"database folder {folder}", "database", mounts)
    if not os.path.exists(path):
        out.append(Finding(WARN, "database", f"no database at {path} yet: it is created by the first "
                                             "consumer or enqueue (check LITEQUEUE_DB if you expected one)"))
        return out
    if not os.path.isfile(path):
        out.append(Finding(FAIL, "database", f"{path} is not a file"))
        return out
    out.append(Finding(OK, "database", f"database {path} ({os.path.getsize(path):,} bytes)"))
    out += check_space(path)
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            row = conn.execute("SELECT value FROM lq_meta WHERE key = 'schema_version'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        out.append(Finding(FAIL, "database", f"cannot read {path}: {exc}"))
        return out
    out.append(Finding(OK if mode == "wal" else WARN, "database",
                       f"journal mode {mode}" + ("" if mode == "wal" else
                                                 "; litequeue expects wal (readers never block the writer): "
                                                 "start a consumer once to switch it")))
    out.append(_schema_finding(int(row[0]) if row else 0))
    return out


#: Below this much free space next to the database, doctor warns (a busy queue's WAL alone
#: can take tens of megabytes before a checkpoint).
LOW_SPACE = 100_000_000


def check_space(path: str) -> list[Finding]:
    """Free space on the database's filesystem, and files that no longer are the database."""
    from litequeue.store import faults, file_identity

    out = []
    free = faults.free_bytes(path)
    if free is not None:
        text = f"{free / 1e6:.1f} MB free on the database's filesystem"
        if free < 1_000_000:
            out.append(Finding(FAIL, "database", f"{text}: the disk is full; enqueues fail (exit 3) and "
                                                 "consumers wait until space returns: free some space there"))
        elif free < LOW_SPACE:
            out.append(Finding(WARN, "database", f"{text}: low; enqueues fail once it is gone"))
        else:
            out.append(Finding(OK, "database", text))
    for pid, command in file_identity.stale_openers(path):
        out.append(Finding(WARN, "database", f"process {pid} ({command}) still has a deleted or replaced copy "
                                             f"of {path} open: it serves that file, not this one; restart it"))
    return out


def _server_version(url: str) -> list[Finding]:
    from litequeue.store.database import open_database

    try:
        db = open_database(url, create=False)
        try:
            version = db.execute_sql("SELECT version()").fetchone()[0]
        finally:
            db.close()
    except (LiteQueueError, pw.DatabaseError) as exc:
        return [Finding(FAIL, "database", f"cannot reach {redact(url)}: {exc}")]
    return [Finding(OK, "database", f"server: {version}")]


# -- inotify and the inbox ----------------------------------------------------------------

def check_inotify(folder: str = INOTIFY) -> list[Finding]:
    """The kernel limits the inbox watcher lives with (one watch per folder watched)."""
    limits = {}
    for name in ("max_user_watches", "max_user_instances", "max_queued_events"):
        try:
            limits[name] = int(Path(folder, name).read_text().strip())
        except (OSError, ValueError):
            return [Finding(INFO, "inotify", f"no inotify limits at {folder}: the inbox watcher "
                                             "falls back to polling")]
    text = ", ".join(f"{k}={v}" for k, v in limits.items())
    low = [k for k, floor in (("max_user_watches", 8192), ("max_user_instances", 128),
                              ("max_queued_events", 16384)) if limits[k] < floor]
    if low:
        return [Finding(WARN, "inotify", f"{text}: {', '.join(low)} is low; raise it with sysctl "
                                         f"fs.inotify.{low[0]}=... (the inbox watcher rescans after an "
                                         "overflow, so nothing is lost, only slower)")]
    return [Finding(OK, "inotify", text)]


def check_inbox(folder: str | None) -> list[Finding]:
    """The inbox and its working folders exist and share one filesystem (moves are renames)."""
    if not folder:
        return [Finding(INFO, "inbox", "no inbox configured (doctor --inbox DIR, or the folder "
                                       "given to watch-inbox in the config file)")]
    root = Path(folder)
    if not root.is_dir():
        return [Finding(FAIL, "inbox", f"inbox {root} does not exist or is not a folder")]
    dev = root.stat().st_dev
    out = []
    apart = [p for p in (root / n for n in INBOX_FOLDERS) if p.is_dir() and p.stat().st_dev != dev]
    if apart:
        out.append(Finding(FAIL, "inbox", f"{', '.join(map(str, apart))} on another filesystem than {root}: "
                                          "moves would be copies, not atomic renames; keep them together"))
    else:
        present = [n for n in INBOX_FOLDERS if (root / n).is_dir()]
        out.append(Finding(OK, "inbox", f"inbox {root}" + (f" and {', '.join(present)} on one filesystem"
                                                           if present else "")))
    out += check_filesystem(str(root), f"inbox {root}", "inbox")
    # The inbox is not a database: a network share only loses inotify events, and the
    # watcher's polling covers that; say so instead of warning about locks.
    for f in out:
        if f.topic == "inbox" and f.level == WARN and "network" in f.message:
            f.level = INFO
            f.message = f"inbox {root} is on a network or FUSE filesystem: inotify sees no remote " \
                        "writes there; run watch-inbox with --poll"
    return out


# -- consumers and claims -----------------------------------------------------------------

def check_consumers(db: pw.Database, now: float | None = None) -> list[Finding]:
    """Live consumers, consumers registered as running that are dead, and claims held by
    dead or unknown consumers (they go back to the queue when any consumer runs)."""
    from litequeue.ledger.queries import claims_by_holder

    verdict = judge(db, now=now)
    dead = verdict.dead
    live = [f"{row[0]} (queues: {row[6] or 'all'})" for row in verdict.alive.values()]
    out = [Finding(OK if live else WARN, "consumers",
                   f"{len(live)} live consumer(s)" + (f": {'; '.join(live)}" if live else
                                                      ": nothing runs jobs; start litequeue run-consumer APP"))]
    for cid, why in dead.items():
        out.append(Finding(WARN, "consumers", f"stale consumer {cid}: registered as running but dead ({why}); "
                                              "the next live consumer marks it dead and recovers its jobs"))
    counts: dict[str, int] = {}
    for holder, _, n in claims_by_holder(db):
        counts[holder] = counts.get(holder, 0) + n
    holders = list(counts.items())
    for holder, n in holders:
        if verdict.holder_is_orphaned(holder):
            why = verdict.why(holder)
            level = WARN if live else FAIL
            out.append(Finding(level, "claims", f"{n} job(s) claimed by {holder}, which is dead ({why}): "
                                                + ("a live consumer recovers them within a second" if live
                                                   else "they run again as soon as a consumer starts")))
    if not any(verdict.holder_is_orphaned(h) for h, _ in holders):
        out.append(Finding(OK, "claims", "no orphaned claims"))
    return out


def check_health(db: str | None) -> list[Finding]:
    report = health.check(db)
    level = {health.HEALTHY: OK, health.DEGRADED: WARN, health.UNHEALTHY: FAIL}[report.status]
    out = [Finding(level, "health", report.status)]
    for reason in report.reasons:
        kind, _, text = reason.partition(": ")
        out.append(Finding(FAIL if kind == health.UNHEALTHY else WARN, "health", text))
    return out


def _schema_finding(version: int) -> Finding:
    from litequeue.store.migrations import VERSION

    if version > VERSION:
        return Finding(FAIL, "database", f"schema version {version} is newer than this litequeue's "
                                         f"version {VERSION}: upgrade litequeue")
    if version < VERSION:
        return Finding(WARN, "database", f"schema version {version}, this litequeue needs {VERSION}: "
                                         "run `litequeue migrate` (consumers do it on start)")
    return Finding(OK, "database", f"schema version {version}")
