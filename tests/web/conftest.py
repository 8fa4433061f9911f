"""Fixtures of the status page tests: one ledger filled by a real consumer per module, and a
fresh copy of it for each test (actions write to it)."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from litequeue_web import WebSettings, create_app
from tests.conftest import Project

TASKS = """
from litequeue import LiteQueue, crontab

app = LiteQueue("shop")

@app.task()
def ok(x, **kw):
    return {"got": x, "note": "<b>bold</b>"} if kw else f"got {x}"

@app.task(queue="mail")
def boom(x):
    raise ValueError(f"bad {x}")

@app.periodic_task(crontab())
def tick():
    return "tick"

@app.periodic_task(crontab(minute="0", hour="3"))
def nightly():
    return "nightly"
"""

SEED = """
from tasks import app, boom, ok
ids = {}
ids["ok"] = ok(1).id
ids["secret"] = ok(2, api_key="sk-live-abcdefghijklmnopqrstuvwx", user="ann").id
ids["script"] = boom("<script>alert(1)</script>").id
ids["boom2"] = boom("order-2").id
pipe = ok.s(3).then(ok)
ids["parent"], ids["child"] = pipe.id, pipe.on_complete.id
app.enqueue(pipe)
ids["later"] = app.enqueue_by_name("ok", [4], queue="later", delay=3600).id
import json
print(json.dumps(ids))
"""


class Seeded:
    """The seeded ledger: its file and the ids of the jobs it holds, by role."""

    def __init__(self, db: Path, ids: dict[str, str]) -> None:
        self.db = db
        self.ids = ids


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    import json

    project = Project(tmp_path_factory.mktemp("seed"))
    project.write("tasks.py", TASKS)
    ids = json.loads(project.python(SEED).stdout.strip().splitlines()[-1])
    project.cli("run-consumer", "tasks", "--burst", "-w", "2")
    # An inbox file row, as the inbox watcher records one (the page only reads it).
    with sqlite3.connect(project.db) as conn:
        conn.execute("INSERT INTO lq_inbox_file (job_id, inbox, name, path, size, sha256, state, taken_at, "
                     "settled_at) VALUES (?, 'scans', 'invoice-7.pdf', '/srv/scans/done/invoice-7.pdf', 1234, "
                     "'ab12', 'done', ?, ?)", (ids["ok"], time.time() - 60, time.time() - 59))
    yield Seeded(project.db, ids)
    project.kill_all()


@pytest.fixture
def web_db(seeded: Seeded, tmp_path: Path) -> Path:
    """A private copy of the seeded ledger (SQLite's backup API, so the WAL comes along)."""
    target = tmp_path / "lq.db"
    src = sqlite3.connect(seeded.db)
    dst = sqlite3.connect(target)
    src.backup(dst)
    dst.execute("PRAGMA journal_mode=wal")
    src.close()
    dst.close()
    return target


MakeApp = Callable[..., Flask]


@pytest.fixture
def make_app(web_db: Path) -> MakeApp:
    def make(**settings: Any) -> Flask:
        settings.setdefault("db", str(web_db))
        return create_app(WebSettings(**settings))
    return make


@pytest.fixture
def client(make_app: MakeApp) -> FlaskClient:
    return make_app().test_client()


ORIGIN = {"Origin": "http://localhost"}


def token_from(client: FlaskClient, path: str = "/") -> str:
    """The CSRF token the page at ``path`` put in its forms."""
    html = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', html) or \
        re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        with conn:  # commits a write
            return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def start_web(project: Project, *args: str) -> str:
    """Start a real ``litequeue serve-web --port 0 ARGS`` (killed with the project's other
    processes) and return the URL it printed."""
    import subprocess
    import sys

    from tests.conftest import wait_for

    log = project.root / f"web-{len(project.procs)}.log"
    out = open(log, "w")  # noqa: SIM115 - the child writes to it for its whole life
    proc = subprocess.Popen([sys.executable, "-m", "litequeue", "serve-web", "--port", "0", *args],
                            cwd=project.root, env=project.env, stdout=out, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    project.procs.append(proc)

    def printed_url() -> str | None:
        if proc.poll() is not None:
            raise AssertionError(f"serve-web exited {proc.returncode}:\n{log.read_text()}")
        found = re.search(r"litequeue status page: (http://\S+/)", log.read_text())
        return found.group(1) if found else None

    return str(wait_for(printed_url, 30, what="serve-web to print its URL"))
