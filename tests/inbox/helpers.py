"""Shared pieces of the inbox tests: a tasks module with a side-effect log, and a watcher
started as a real process."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

TASKS = '''
import hashlib, os
from litequeue import LiteQueue

app = LiteQueue("inboxtest")
HERE = os.path.dirname(os.path.abspath(__file__))


def _record(path):
    with open(path, "rb") as fh:
        data = fh.read()
    line = f"{os.path.basename(path)}\\t{hashlib.sha256(data).hexdigest()}\\t{path}\\n"
    fd = os.open(os.path.join(HERE, "effects.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one O_APPEND write: lines never interleave
    finally:
        os.close(fd)
    return len(data)


@app.task()
def ingest(path):
    return _record(path)


@app.task()
def picky(path):
    if not os.path.exists(os.path.join(HERE, "fixed")):
        raise ValueError("cannot read this file yet")
    return _record(path)
'''


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def effects(root: Path) -> list[tuple[str, str, str]]:
    """(name, sha256, path) per task run, in order."""
    log = root / "effects.log"
    if not log.exists():
        return []
    return [tuple(line.split("\t")) for line in log.read_text().splitlines()]  # type: ignore[misc]


def start_watcher(project: Any, inbox: Path, *args: str, log: str = "watcher.log") -> subprocess.Popen[str]:
    """``litequeue watch-inbox INBOX --app tasks ARGS`` as a real process in its own group."""
    out = open(project.root / log, "a")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen([sys.executable, "-m", "litequeue", "-v", "watch-inbox", str(inbox), "--app",
                             "tasks", *args], cwd=project.root, env=project.env, stdout=out,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    project.procs.append(proc)
    return proc


def files_in(folder: Path) -> list[Path]:
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def inbox_rows(project: Any) -> list[tuple[Any, ...]]:
    return project.query("SELECT name, state, job_id, path, sha256 FROM lq_inbox_file ORDER BY id")


def write_atomic(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
