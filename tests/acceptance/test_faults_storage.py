"""Storage faults (issue 17): the disk fills up, the database file is deleted or replaced
under a running consumer, and the database's folder is mounted read-only.

Real mounts (a size-limited tmpfs, a read-only bind mount), real consumer processes, real
CLI runs. Needs root (CI runs as root); every mount is undone in the fixture's teardown.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Project, require_service, wait_for

TASKS = '''\
from __future__ import annotations

import time

from litequeue import LiteQueue

app = LiteQueue("faults")


@app.task()
def work(i: int, pad: str = "", seconds: float = 0.0) -> int:
    if seconds:
        time.sleep(seconds)
    return i
'''

FULL_LINE = re.compile(r"database or disk is full: (\S+) \((\d+(?:\.\d+)?) MB free on its filesystem\); "
                       r"nothing was written")
EXIT_FULL = 3
EXIT_READ_ONLY = 4


def _root_only() -> None:
    if os.geteuid() != 0:
        require_service("root", "mounting a tmpfs or a read-only bind mount needs root")


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


def _umount(point: Path) -> None:
    # Lazy: a consumer killed a moment ago may still hold a file open there.
    subprocess.run(["umount", "-l", str(point)], check=False, capture_output=True)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs under the test's temp dir (``mount -o remount,size=...`` grows it)."""
    _root_only()
    point = tmp_path / "fs"
    point.mkdir()
    _mount("-t", "tmpfs", "-o", "size=3m", "tmpfs", str(point))
    try:
        yield point
    finally:
        _umount(point)


@pytest.fixture
def on_tmpfs(project: Project, tmpfs: Path) -> Iterator[Project]:
    project.db = tmpfs / "lq.db"
    project.write("tasks.py", TASKS)
    try:
        yield project
    finally:
        project.kill_all()  # before the tmpfs is unmounted


def _integrity(db: Path) -> str:
    conn = sqlite3.connect(str(db), timeout=30)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def say(text: str) -> None:
    print(f"\n[storage-faults] {text}")


# -- the disk fills up ---------------------------------------------------------------------

FILL = '''
import json, litequeue, tasks
done = 0
try:
    for i in range(100000):
        tasks.work(i, "x" * 20000)
        done += 1
except Exception as exc:
    print(json.dumps({"done": done, "type": type(exc).__name__,
                      "is_database_error": isinstance(exc, litequeue.DatabaseError), "error": str(exc)}))
'''


def test_disk_full_says_so_in_one_line_loses_nothing_and_recovers(on_tmpfs: Project, tmpfs: Path) -> None:
    project = on_tmpfs
    project.cli("enqueue", "work", "--app", "tasks", "--args", "[0]")  # creates the database
    consumer = project.start_consumer("tasks", "-w", "2", log="consumer.log")
    project.wait_status("succeeded", 1)
    # Jobs that run a while: the consumer holds claims and owes acks while the disk fills.
    project.python("import tasks\nfor i in range(4): tasks.work(100 + i, '', 1.5)")
    wait_for(lambda: project.statuses().get("running"), 10, what="a running job")

    # The Python API: the statement's own error, not the rollback that followed it.
    out = project.python(FILL).stdout
    report = json.loads(out)
    assert report["type"] == "DatabaseFullError", report
    assert report["is_database_error"], report
    match = FULL_LINE.search(report["error"])
    assert match and match.group(1) == str(project.db), report["error"]
    enqueued = report["done"]
    assert enqueued > 0, "nothing fitted on the tmpfs; the scenario proved nothing"

    # The CLI: one line, its own exit status, no traceback.
    cli = project.cli("enqueue", "work", "--app", "tasks", "--args", json.dumps([9, "y" * 20000]), check=False)
    assert cli.returncode == EXIT_FULL, (cli.returncode, cli.stderr)
    lines = _error_lines(cli.stderr)
    assert len(lines) == 1 and lines[0].startswith("Error: database or disk is full: "), cli.stderr
    assert "Traceback" not in cli.stderr
    assert FULL_LINE.search(lines[0]).group(1) == str(project.db)

    # A bulk enqueue writes all of its jobs or none.
    before = project.query("SELECT COUNT(*) FROM lq_job")[0][0]
    bulk = project.python("import json, tasks\ntry:\n    tasks.work.map([(i, 'z' * 2000) for i in range(500)])\n"
                          "except Exception as exc:\n    print(type(exc).__name__)\n").stdout.strip()
    assert bulk == "DatabaseFullError", bulk
    assert project.query("SELECT COUNT(*) FROM lq_job")[0][0] == before

    # The running consumer: one line per back-off step (1 s, 2 s, 4 s ...), no traceback.
    log = project.root / "consumer.log"

    def full_lines() -> list[str]:
        return [line for line in log.read_text().splitlines() if "database or disk is full" in line]

    wait_for(lambda: len(full_lines()) >= 3, 15, what="the consumer to log the full disk")
    time.sleep(3)
    lines_seen = full_lines()
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    assert "cannot rollback" not in text, text[-3000:]
    # Three writers (dispatcher, supervisor, scheduler) log at most once per step each;
    # a line a second from each would be well over this.
    assert len(lines_seen) <= 12, "\n".join(lines_seen)
    assert consumer.poll() is None, "the consumer died when the disk filled"

    # health and doctor say so, with the free space.
    health = project.cli("health", check=False)
    assert health.returncode == 2, health.stdout
    assert f"- unhealthy: database: the disk is full: {project.db} (" in health.stdout, health.stdout
    assert "MB free on its filesystem" in health.stdout
    doctor = project.cli("doctor", check=False).stdout
    assert re.search(r"fail +\d+\.\d MB free on the database's filesystem: the disk is full", doctor), doctor

    # Space comes back: the same consumer drains everything, nothing lost, file intact.
    _mount("-o", "remount,size=50m", str(tmpfs))
    total = 1 + 4 + enqueued
    project.wait_status("succeeded", total, timeout=25)
    assert project.statuses() == {"succeeded": total}
    assert project.query("SELECT COUNT(*) FROM lq_ready")[0][0] == 0
    assert project.query("SELECT COUNT(*) FROM lq_schedule")[0][0] == 0
    assert _integrity(project.db) == "ok"
    assert consumer.poll() is None
    say(f"disk full: API -> {report['type']}: {report['error']}")
    say(f"disk full: CLI exit {cli.returncode}: {lines[0]}")
    say(f"disk full: consumer logged {len(lines_seen)} line(s), e.g. {lines_seen[0]}")
    say(f"disk full: after remount {total} jobs succeeded, 0 lost, integrity ok")


def test_bulk_enqueue_writes_all_or_none(on_tmpfs: Project, tmpfs: Path) -> None:
    project = on_tmpfs
    _mount("-o", "remount,size=8m", str(tmpfs))
    project.cli("enqueue", "work", "--app", "tasks", "--args", "[0]")
    # More jobs than fit, and more than one of the old 10,000-job commit chunks.
    out = project.python("import tasks\ntry:\n    tasks.work.map(range(30000))\n"
                         "except Exception as exc:\n    print(type(exc).__name__, exc)\n").stdout
    assert out.startswith("DatabaseFullError "), out
    assert project.query("SELECT COUNT(*) FROM lq_job")[0][0] == 1, "a part of the bulk enqueue was kept"
    assert project.query("SELECT COUNT(*) FROM lq_ready")[0][0] == 1
    assert _integrity(project.db) == "ok"
    say(f"bulk enqueue of 30000 on a full disk: {out.strip()}; 0 of them written")


# -- the database file is deleted or replaced under a running consumer ---------------------

def _consumer_lines(project: Project, needle: str) -> list[str]:
    log = project.root / "consumer.log"
    return [line for line in log.read_text().splitlines() if needle in line] if log.exists() else []


def _wait_succeeded(project: Project, job_id: str, timeout: float) -> None:
    def done() -> bool:
        try:
            rows = project.query("SELECT status FROM lq_job WHERE id = ?", (job_id,))
        except sqlite3.DatabaseError:
            return False
        return bool(rows) and rows[0][0] == "succeeded"

    wait_for(done, timeout, what=f"job {job_id} to succeed in the new database file")


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_database_deleted_or_replaced_under_a_running_consumer(project: Project, how: str) -> None:
    project.write("tasks.py", TASKS)
    project.cli("enqueue", "work", "--app", "tasks", "--args", "[1]")
    consumer = project.start_consumer("tasks", log="consumer.log")
    project.wait_status("succeeded", 1)
    if how == "deleted":
        # What `rm litequeue.db` does: the -wal and -shm files stay.
        os.remove(project.db)
    else:
        # Another litequeue database (with a job of its own) renamed over it, as a deploy does.
        other = project.root / "other.db"
        env = dict(project.env, LITEQUEUE_DB=str(other))
        subprocess.run([*_python(), "-m", "litequeue", "enqueue", "work", "--app", "tasks", "--args", "[2]"],
                       cwd=project.root, env=env, check=True, capture_output=True)
        os.replace(other, project.db)
    started = time.monotonic()
    job_id = project.cli("enqueue", "work", "--app", "tasks", "--args", "[3]").stdout.strip()
    _wait_succeeded(project, job_id, 10)
    took = time.monotonic() - started
    if how == "replaced":
        project.wait_status("succeeded", 2, timeout=10)  # the new file's own job ran too
    # The job may run before the next heartbeat notices (SQLite pairs the new file with the
    # -wal it shares by path): the line comes with that heartbeat, within a second or two.
    needle = "was deleted or replaced while this process had it open"
    wait_for(lambda: _consumer_lines(project, needle), 10, what="the consumer to notice the new file")
    time.sleep(1.5)  # one more heartbeat: it must not say it twice
    lines = _consumer_lines(project, needle)
    assert len(lines) == 1, (project.root / "consumer.log").read_text()[-3000:]
    assert str(project.db) in lines[0]
    assert "ERROR" in lines[0] or "error" in lines[0].lower()
    assert consumer.poll() is None, "the consumer exited instead of reopening the database"
    # The consumer serves the new file: it registered there.
    assert project.query("SELECT COUNT(*) FROM lq_consumer WHERE status = 'running'")[0][0] >= 1
    say(f"database {how}: the job enqueued afterwards succeeded after {took:.1f}s; consumer logged: {lines[0]}")


def test_status_page_reads_the_file_now_at_the_path(project: Project, caplog: pytest.LogCaptureFixture) -> None:
    from litequeue_web import WebSettings, create_app

    project.write("tasks.py", TASKS)
    project.cli("enqueue", "work", "--app", "tasks", "--args", "[1]")
    client = create_app(WebSettings(db=str(project.db))).test_client()
    assert client.get("/api/overview").get_json()["queues"]["default"]["queued"] == 1
    other = project.root / "other.db"
    env = dict(project.env, LITEQUEUE_DB=str(other))
    for i in range(3):
        subprocess.run([*_python(), "-m", "litequeue", "enqueue", "work", "--app", "tasks", "--args", f"[{i}]"],
                       cwd=project.root, env=env, check=True, capture_output=True)
    os.replace(other, project.db)
    assert client.get("/api/overview").get_json()["queues"]["default"]["queued"] == 3
    lines = [r.getMessage() for r in caplog.records if "deleted or replaced" in r.getMessage()]
    assert len(lines) == 1 and str(project.db) in lines[0], lines


def test_watch_inbox_writes_to_the_file_now_at_the_path(project: Project) -> None:
    project.write("tasks.py", TASKS + "\n\n@app.task()\ndef ingest(path: str) -> str:\n    return path\n")
    inbox = project.root / "inbox"
    inbox.mkdir()
    project.cli("enqueue", "work", "--app", "tasks", "--args", "[1]")  # creates the database
    log = open(project.root / "watcher.log", "a")  # noqa: SIM115 - closed below
    watcher = subprocess.Popen([*_python(), "-m", "litequeue", "watch-inbox", str(inbox), "--app", "tasks",
                                "--rule", "*.txt=ingest"], cwd=project.root, env=project.env, stdout=log,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    project.procs.append(watcher)
    try:
        (inbox / "a.txt").write_text("a")
        wait_for(lambda: project.query("SELECT COUNT(*) FROM lq_job WHERE task = 'ingest'") == [(1,)], 10,
                 what="the first file's job")
        os.remove(project.db)
        time.sleep(1.5)  # the watcher notices within a second and restarts on the (new) path
        (inbox / "b.txt").write_text("b")
        wait_for(lambda: project.query("SELECT COUNT(*) FROM lq_job WHERE task = 'ingest' "
                                       "AND args LIKE '%b.txt%'") == [(1,)], 10,
                 what="the second file's job in the new database file")
        assert watcher.poll() is None
        lines = [line for line in (project.root / "watcher.log").read_text().splitlines()
                 if "deleted or replaced" in line]
        assert len(lines) == 1 and str(project.db) in lines[0], lines
    finally:
        log.close()


def _python() -> list[str]:
    import sys

    return [sys.executable]


# -- the database's folder is mounted read-only --------------------------------------------

@pytest.fixture
def read_only_folder(project: Project, tmp_path: Path) -> Iterator[Path]:
    """A folder with a litequeue database holding 3 queued jobs, then bind-mounted read-only."""
    _root_only()
    folder = tmp_path / "data"
    folder.mkdir()
    project.db = folder / "lq.db"
    project.write("tasks.py", TASKS)
    for i in range(3):
        project.cli("enqueue", "work", "--app", "tasks", "--args", f"[{i}]")
    _mount("--bind", str(folder), str(folder))
    try:
        _mount("-o", "remount,bind,ro", str(folder))
        yield folder
    finally:
        project.kill_all()
        _umount(folder)


def test_read_only_folder(project: Project, read_only_folder: Path) -> None:
    # Producers: one line naming the path and the reason.
    cli = project.cli("enqueue", "work", "--app", "tasks", "--args", "[7]", check=False)
    assert cli.returncode == EXIT_READ_ONLY, (cli.returncode, cli.stderr)
    lines = _error_lines(cli.stderr)
    assert len(lines) == 1, cli.stderr
    assert lines[0].startswith(f"Error: database is read-only: {project.db} (its filesystem is mounted read-only)"), \
        lines[0]
    api = project.python("import tasks, litequeue\ntry:\n    tasks.work(8)\n"
                         "except litequeue.DatabaseReadOnlyError as exc:\n    print(exc)\n").stdout.strip()
    assert api.startswith(f"database is read-only: {project.db} ("), api

    # Read commands keep working.
    status = project.cli("status")
    assert re.search(r"^default\s+0\s+3\s", status.stdout, re.M), status.stdout
    listing = project.cli_json("jobs", "list", "--json")
    assert len(listing) == 3
    page = project.python(
        "import json\nfrom litequeue_web import WebSettings, create_app\n"
        f"client = create_app(WebSettings(db={str(project.db)!r})).test_client()\n"
        "r = client.get('/api/overview')\nprint(r.status_code, json.dumps(r.get_json()))\n").stdout
    code, _, body = page.partition(" ")
    assert code == "200", page
    assert json.loads(body)["queues"]["default"]["queued"] == 3, body

    # A consumer waits, one line per back-off step saying why, then works once it may write.
    consumer = project.start_consumer("tasks", log="consumer.log")
    wait_for(lambda: len(_consumer_lines(project, "database is read-only")) >= 2, 15,
             what="the consumer to log the read-only database twice")
    assert consumer.poll() is None, (project.root / "consumer.log").read_text()
    text = (project.root / "consumer.log").read_text()
    assert "Traceback" not in text, text[-3000:]
    waiting = _consumer_lines(project, "database is read-only")
    assert "its filesystem is mounted read-only" in waiting[0], waiting[0]
    _mount("-o", "remount,bind,rw", str(read_only_folder))
    project.wait_status("succeeded", 3, timeout=20)
    say(f"read-only: CLI exit {cli.returncode}: {lines[0]}")
    say(f"read-only: API: {api}")
    say(f"read-only: consumer logged {len(waiting)} line(s) while waiting, e.g. {waiting[0]}")


# -- status on a database whose queues are empty -------------------------------------------

def test_status_says_all_queues_empty(project: Project) -> None:
    project.write("tasks.py", TASKS)
    for i in range(3):
        project.cli("enqueue", "work", "--app", "tasks", "--args", f"[{i}]")
    project.cli("run-consumer", "tasks", "--burst")
    out = project.cli("status").stdout
    assert out.splitlines()[0] == "all queues empty; 3 succeeded in the last hour", out
