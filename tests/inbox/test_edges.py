"""The inbox's edges with real watcher and consumer processes: files present at start, same
names, symlinks, FIFOs, failures and retries, dedupe, subfolders, crash repairs, status."""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from pathlib import Path

from tests.conftest import BOTH_BACKENDS, pg_connect, wait_for
from tests.inbox.helpers import TASKS, effects, files_in, inbox_rows, sha, start_watcher, write_atomic


def setup(project, *args: str) -> Path:
    project.write("tasks.py", TASKS)
    inbox = project.root / "inbox"
    inbox.mkdir(exist_ok=True)
    return inbox


@BOTH_BACKENDS  # what the watcher records in the database, on PostgreSQL too
def test_files_present_before_the_watcher_starts_are_taken(project) -> None:
    inbox = setup(project)
    expected = {}
    for i in range(5):
        data = f"early {i}".encode()
        write_atomic(inbox / f"early-{i}.txt", data)
        expected[f"early-{i}.txt"] = sha(data)
    project.start_consumer("tasks", "-w", "2")
    start_watcher(project, inbox, "--rule", "*.txt=ingest")
    wait_for(lambda: len(files_in(inbox / "done")) == 5, 30, what="5 files in done/")
    assert {r[0]: r[1] for r in effects(project.root)} == expected


@BOTH_BACKENDS  # what the watcher records in the database, on PostgreSQL too
def test_two_files_of_the_same_name_are_both_processed_and_kept(project) -> None:
    inbox = setup(project)
    project.start_consumer("tasks", "-w", "2")
    start_watcher(project, inbox, "--rule", "*.txt=ingest")
    write_atomic(inbox / "report.txt", b"first")
    wait_for(lambda: not (inbox / "report.txt").exists(), 20, what="the first report.txt to be taken")
    write_atomic(inbox / "report.txt", b"second")
    wait_for(lambda: len(files_in(inbox / "done")) == 2, 30, what="both files in done/")
    done = {p.name: p.read_bytes() for p in files_in(inbox / "done")}
    assert sorted(done.values()) == [b"first", b"second"]
    assert set(done) == {"report.txt", "report_2.txt"}
    assert sorted(r[1] for r in effects(project.root)) == sorted([sha(b"first"), sha(b"second")])


def test_symlinks_are_not_followed_and_fifos_do_not_hang_the_watcher(project, tmp_path: Path) -> None:
    inbox = setup(project)
    outside = tmp_path / "secret.txt"
    outside.write_text("outside the inbox")
    (inbox / "link.txt").symlink_to(outside)
    os.mkfifo(inbox / "pipe.txt")
    project.start_consumer("tasks", "-w", "2")
    watcher = start_watcher(project, inbox, "--rule", "*.txt=ingest", "--rescan", "0.5")
    wait_for(lambda: "pipe.txt is not a regular file" in (project.root / "watcher.log").read_text(), 20,
             what="the watcher to look at the FIFO")
    write_atomic(inbox / "after.txt", b"a file after the FIFO")
    wait_for(lambda: len(files_in(inbox / "done")) == 1, 20, what="the file after the FIFO in done/")
    assert watcher.poll() is None
    assert [r[0] for r in effects(project.root)] == ["after.txt"]
    assert (inbox / "link.txt").is_symlink() and os.readlink(inbox / "link.txt") == str(outside)
    assert outside.read_text() == "outside the inbox"
    assert (inbox / "pipe.txt").exists()
    assert "link.txt is a symlink" in (project.root / "watcher.log").read_text()
    # a oneshot run looks at the FIFO too, and still exits
    out = project.cli("watch-inbox", "inbox", "--app", "tasks", "--rule", "*.txt=ingest", "--oneshot",
                      timeout=30, check=False)
    assert out.returncode in (0, 1) and "another watcher" in out.stderr  # the daemon holds the inbox


def test_oneshot_does_not_open_a_fifo(project) -> None:
    inbox = setup(project)
    os.mkfifo(inbox / "pipe.txt")
    write_atomic(inbox / "a.txt", b"a")
    out = project.cli("watch-inbox", "inbox", "--app", "tasks", "--rule", "*.txt=ingest", "--oneshot",
                      "--settle", "0.2", timeout=30)
    assert "took 1 file(s)" in out.stdout
    assert (inbox / "pipe.txt").exists()


@BOTH_BACKENDS  # what the watcher records in the database, on PostgreSQL too
def test_a_failing_task_puts_the_file_in_failed_and_retry_brings_it_back(project) -> None:
    inbox = setup(project)
    project.start_consumer("tasks", "-w", "2", "-k", "process")  # the observer in a worker process
    start_watcher(project, inbox, "--rule", "*.csv=picky")
    write_atomic(inbox / "orders.csv", b"id,total\n1,9.50\n")
    wait_for(lambda: (inbox / "failed" / "orders.csv").exists(), 30, what="orders.csv in failed/")
    report = (inbox / "failed" / "orders.csv.error.txt").read_text()
    assert "ValueError: cannot read this file yet" in report
    (job_id,) = [r[2] for r in inbox_rows(project)]
    shown = project.cli_json("jobs", "show", job_id, "--json")
    assert shown["status"] == "failed" and shown["file"]["state"] == "failed"
    assert shown["file"]["name"] == "orders.csv" and shown["file"]["size"] == 16
    (project.root / "fixed").write_text("")
    project.cli("jobs", "retry", job_id)
    wait_for(lambda: (inbox / "done" / "orders.csv").exists(), 30, what="orders.csv in done/ after the retry")
    assert not (inbox / "failed" / "orders.csv").exists()
    (row,) = inbox_rows(project)
    assert row[1] == "done" and row[2] != job_id
    assert project.statuses() == {"failed": 1, "succeeded": 1}
    assert [r[0] for r in effects(project.root)] == ["orders.csv"]


@BOTH_BACKENDS  # what the watcher records in the database, on PostgreSQL too
def test_dedupe_sends_a_file_already_processed_to_duplicates(project) -> None:
    inbox = setup(project)
    project.start_consumer("tasks", "-w", "2")
    start_watcher(project, inbox, "--rule", "*.txt=ingest", "--dedupe")
    write_atomic(inbox / "a.txt", b"same bytes")
    wait_for(lambda: (inbox / "done" / "a.txt").exists(), 20, what="a.txt in done/")
    write_atomic(inbox / "b.txt", b"same bytes")
    write_atomic(inbox / "c.txt", b"other bytes")
    wait_for(lambda: (inbox / "duplicates" / "b.txt").exists(), 20, what="b.txt in duplicates/")
    wait_for(lambda: (inbox / "done" / "c.txt").exists(), 20, what="c.txt in done/")
    assert sorted(r[0] for r in effects(project.root)) == ["a.txt", "c.txt"]
    assert {r[0]: r[1] for r in inbox_rows(project)}["b.txt"] == "duplicate"


def test_recursive_rules_match_relative_paths_and_skip_the_watchers_folders(project) -> None:
    inbox = setup(project)
    (inbox / "invoices" / "2026").mkdir(parents=True)
    write_atomic(inbox / "invoices" / "jan.csv", b"jan")
    write_atomic(inbox / "invoices" / "2026" / "deep.csv", b"deep")  # '*' stays in one folder
    write_atomic(inbox / "notes.csv", b"top")
    project.start_consumer("tasks", "-w", "2")
    start_watcher(project, inbox, "--recursive", "--rule", "invoices/*.csv=ingest", "--rule", "**/*.md=ingest")
    (inbox / "new" / "sub").mkdir(parents=True)
    write_atomic(inbox / "new" / "sub" / "late.md", b"late")
    wait_for(lambda: len(files_in(inbox / "done")) == 2, 30, what="2 files in done/")
    assert sorted(p.relative_to(inbox / "done").as_posix() for p in files_in(inbox / "done")) == [
        "invoices/jan.csv", "new/sub/late.md"]
    status = project.cli_json("status", "--json")
    (box,) = status["inboxes"]
    assert box["done"] == 2 and box["waiting"] == 0
    assert box["unmatched"] == ["invoices/2026/deep.csv", "notes.csv"]
    assert box["watcher_pid"]
    text = project.cli("status").stdout
    assert str(inbox) in text and "2 file(s) match no rule" in text


def test_an_unknown_task_is_a_start_up_error(project) -> None:
    inbox = setup(project)
    out = project.cli("watch-inbox", str(inbox), "--app", "tasks", "--rule", "*.pdf=ocr", "--oneshot", check=False)
    assert out.returncode == 1
    assert out.stderr.strip().startswith("Error: unknown task 'ocr'") and "Traceback" not in out.stderr
    out = project.cli("watch-inbox", str(inbox), "--app", "tasks", "--rule", "nonsense", check=False)
    assert out.returncode == 2 and "GLOB=TASK" in out.stderr


@BOTH_BACKENDS  # what the watcher records in the database, on PostgreSQL too
def test_a_restart_repairs_what_a_crash_left_in_the_processing_folder(project) -> None:
    """Three crash points, laid out by hand as a killed process leaves them: renamed but not
    committed; settled in the ledger but not moved; a job that finished with no consumer
    settling its file."""
    inbox = setup(project)
    project.cli("watch-inbox", "inbox", "--app", "tasks", "--rule", "*.txt=ingest", "--oneshot")  # records the layout
    # 1. renamed into its processing folder, killed before the commit
    lost_id = str(uuid.uuid4())
    work = inbox / ".processing" / f"lq-{lost_id}"
    work.mkdir(parents=True)
    write_atomic(work / "renamed.txt", b"renamed, never committed")
    # 2. and 3.: taken normally, then run by a consumer that is stopped before it settles
    write_atomic(inbox / "settled.txt", b"settled, never moved")
    write_atomic(inbox / "orphan.txt", b"finished, never settled")
    project.cli("watch-inbox", "inbox", "--app", "tasks", "--rule", "*.txt=ingest", "--oneshot", "--settle", "0.1")
    rows = {r[0]: r for r in inbox_rows(project)}
    ids = (rows["settled.txt"][2], rows["orphan.txt"][2])
    crash_state = [
        ("UPDATE lq_job SET status = 'succeeded', finished_at = ? WHERE id IN (?, ?)", (time.time() - 60, *ids)),
        ("DELETE FROM lq_ready WHERE job_id IN (?, ?)", ids),
        ("UPDATE lq_inbox_file SET state = 'done', path = ?, settled_at = ? WHERE name = 'settled.txt'",
         (str(inbox / "done" / "settled.txt"), time.time() - 60))]
    if project.pg_url:
        db = pg_connect(project.pg_url)
        with db, db.cursor() as cur:
            for sql, params in crash_state:
                cur.execute(sql.replace("?", "%s"), params)
    else:
        db = sqlite3.connect(project.db)
        with db:
            for sql, params in crash_state:
                db.execute(sql, params)
    db.close()
    project.start_consumer("tasks", "-w", "2")
    out = project.cli("watch-inbox", "inbox", "--app", "tasks", "--rule", "*.txt=ingest", "--oneshot", "--wait",
                      "--timeout", "30")
    assert "took 0 file(s)" in out.stdout
    wait_for(lambda: len(files_in(inbox / "done")) == 3, 30, what="3 files in done/")
    assert sorted(p.name for p in files_in(inbox / "done")) == ["orphan.txt", "renamed.txt", "settled.txt"]
    rows = {r[0]: r for r in inbox_rows(project)}
    assert rows["renamed.txt"][2] == lost_id  # re-taken under the job id its folder names
    assert {r[1] for r in rows.values()} == {"done"}
    assert [r[0] for r in effects(project.root)] == ["renamed.txt"]
    assert files_in(inbox / ".processing") == []
