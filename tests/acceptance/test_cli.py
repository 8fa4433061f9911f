"""The real ``litequeue`` command, run as a subprocess against a real database file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import Project, wait_for

TASKS = """
from litequeue import LiteQueue
app = LiteQueue("shop")

@app.task(retries=1, retry_delay=0.1, queue="mail", priority=5)
def send_receipt(order_id):
    if order_id < 0:
        raise ValueError(f"bad order id {order_id}")
    return {"sent": order_id}

@app.task()
def add(a, b):
    return a + b

@app.task()
def log_run(n):
    import os
    fd = os.open(os.environ["SIDE_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{n}\\n".encode())
    os.close(fd)
"""


@pytest.fixture
def shop(project: Project) -> Project:
    project.write("tasks.py", TASKS)
    return project


def test_enqueue_run_and_inspect(shop: Project):
    job_id = shop.cli("enqueue", "add", "--args", "[2, 3]", "--app", "tasks").stdout.strip()
    assert len(job_id) == 36
    status = shop.cli_json("status", "--json")
    assert status["queues"]["default"]["queued"] == 1
    assert status["queues"]["default"]["oldest_queued_age_s"] >= 0
    shop.cli("run-consumer", "tasks", "-w", "2", "--burst")
    job = shop.cli_json("jobs", "show", job_id, "--json")
    assert job["status"] == "succeeded" and job["result"] == 5 and job["args"] == [2, 3]
    for key in ("id", "task", "queue", "priority", "status", "attempts", "args", "kwargs", "enqueued_at",
                "started_at", "finished_at", "error", "traceback", "result"):
        assert key in job
    assert job["enqueued_at"].endswith("Z")


def test_enqueue_wait_prints_result(shop: Project):
    consumer = shop.start_consumer("tasks", "-w", "2")
    out = shop.cli("enqueue", "add", "--kwargs", '{"a": 40, "b": 2}', "--wait", "--timeout", "20",
                   "--app", "tasks").stdout.split()
    assert out[1] == "42"
    consumer.terminate()
    assert consumer.wait(20) == 0


def test_failed_job_has_traceback_and_retry_reruns_it(shop: Project):
    job_id = shop.cli("enqueue", "send_receipt", "--args", "[-1]", "--app", "tasks").stdout.strip()
    shop.cli("run-consumer", "tasks", "--burst")
    wait_for(lambda: shop.statuses().get("failed"), what="failed job")
    failed = shop.cli_json("jobs", "list", "--status", "failed", "--json")
    assert [j["id"] for j in failed] == [job_id]
    assert "ValueError: bad order id -1" in failed[0]["traceback"]
    assert failed[0]["attempts"] == 2
    text = shop.cli("jobs", "show", job_id).stdout
    assert "Traceback" in text and "attempt 2: failed" in text

    out = shop.cli("jobs", "retry", job_id).stdout
    new_id = out.split("->")[1].strip()
    new = shop.cli_json("jobs", "show", new_id, "--json")
    assert new["retried_from"] == job_id and new["status"] == "queued" and new["args"] == [-1]
    shop.cli("run-consumer", "tasks", "--burst")
    assert shop.cli_json("jobs", "show", new_id, "--json")["status"] == "failed"
    assert shop.cli("jobs", "retry", "--all-failed").returncode == 0


def test_retry_all_failed_with_none_failed_says_so_and_succeeds(shop: Project):
    shop.cli("enqueue", "add", "--args", "[1, 1]", "--app", "tasks")  # a database with no failed job
    proc = shop.cli("jobs", "retry", "--all-failed", "--queue", "mail", check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "no failed jobs to retry (queue mail)"
    bare = shop.cli("jobs", "retry", check=False)  # neither ids nor --all-failed: a usage error
    assert bare.returncode == 2 and "give job ids or --all-failed" in bare.stderr


def test_cancel_queued_job(shop: Project):
    job_id = shop.cli("enqueue", "add", "--args", "[1, 1]", "--app", "tasks").stdout.strip()
    assert "cancelled" in shop.cli("jobs", "cancel", job_id).stdout
    shop.cli("run-consumer", "tasks", "--burst")
    job = shop.cli_json("jobs", "show", job_id, "--json")
    assert job["status"] == "cancelled" and job["attempts"] == 0


def test_tasks_lists_registered_tasks(shop: Project):
    tasks = {t["name"]: t for t in shop.cli_json("tasks", "tasks", "--json")}
    assert tasks["send_receipt"] == {"name": "send_receipt", "qualified_name": "tasks.send_receipt",
                                     "queue": "mail", "priority": 5, "retries": 1, "schedule": None}
    assert set(tasks) == {"send_receipt", "add", "log_run"}


def test_500_jobs_with_8_workers_run_exactly_once(shop: Project):
    log = shop.root / "side.log"
    shop.extra_env["SIDE_LOG"] = str(log)
    shop.python("import tasks; tasks.log_run.map(range(500))")
    shop.cli("run-consumer", "tasks", "-w", "8", "--burst", timeout=120)
    runs = log.read_text().split()
    assert sorted(map(int, runs)) == list(range(500))
    assert shop.statuses() == {"succeeded": 500}
    assert shop.query("SELECT COUNT(*) FROM lq_attempt")[0][0] == 500


def test_every_job_object_has_every_field(shop: Project):
    shop.cli("enqueue", "add", "--args", "[1, 2]", "--app", "tasks")
    (listed,) = shop.cli_json("jobs", "list", "--json")
    shown = shop.cli_json("jobs", "show", listed["id"], "--json")
    assert listed["traceback"] is None and listed["error"] is None and listed["progress"] is None
    assert set(shown) - set(listed) == {"attempt_list", "children", "retries", "file", "depends_on", "dependents",
                                        "held"}
    assert shown["held"] is None  # nothing holds it back (see tests/limits)
    assert {k: v for k, v in shown.items() if k in listed} == listed


def test_read_commands_need_no_user_code(shop: Project):
    shop.cli("enqueue", "add", "--args", "[1, 2]", "--app", "tasks")
    (shop.root / "tasks.py").unlink()
    assert shop.cli_json("status", "--json")["queues"]["default"]["queued"] == 1
    assert len(shop.cli_json("jobs", "list", "--json")) == 1


# -- bad input: one line, non-zero, no traceback, nothing written ---------------------------

def assert_user_error(proc, *needles: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    message = proc.stderr.strip()
    assert message.startswith(("Error:", "Usage:")), message
    for needle in needles:
        assert needle in message, message


def test_unknown_task(shop: Project):
    assert_user_error(shop.cli("enqueue", "nope", "--app", "tasks", check=False),
                      "unknown task 'nope'", "send_receipt")
    assert shop.statuses() == {}


def test_invalid_json_arguments(shop: Project):
    assert_user_error(shop.cli("enqueue", "add", "--args", "[1,", "--app", "tasks", check=False),
                      "--args", "not valid JSON")
    assert_user_error(shop.cli("enqueue", "add", "--kwargs", "[1]", "--app", "tasks", check=False),
                      "--kwargs", "JSON object")
    assert not shop.db.exists() or shop.statuses() == {}


def test_app_not_found_and_app_that_raises(shop: Project):
    assert_user_error(shop.cli("run-consumer", "missing_mod", check=False), "no module named 'missing_mod'")
    shop.write("broken.py", "raise RuntimeError('config missing')\n")
    assert_user_error(shop.cli("run-consumer", "broken", check=False), "raised RuntimeError: config missing")


def test_database_in_missing_folder(shop: Project):
    proc = shop.cli("--db", str(shop.root / "nope" / "lq.db"), "enqueue", "add", "--args", "[1, 2]",
                    "--app", "tasks", check=False)
    assert_user_error(proc, "does not exist")
    assert not (shop.root / "nope").exists()


def test_database_in_read_only_folder_as_another_user(shop: Project):
    """Root ignores permissions, so the check runs as nobody (via setpriv) when we are root."""
    import shutil
    import subprocess
    import sys

    ro = shop.root / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    shop.root.chmod(0o755)
    cmd = [sys.executable, "-m", "litequeue", "--db", str(ro / "lq.db"), "status"]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("setpriv is not available")
        for parent in list(shop.root.parents)[:-1]:
            parent.chmod(parent.stat().st_mode | 0o005)
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    env = dict(shop.env, HOME="/tmp")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/tmp")
    assert_user_error(proc)
    assert "no litequeue database" in proc.stderr or "read-only" in proc.stderr


def test_file_that_is_not_a_litequeue_database(shop: Project):
    bogus = shop.root / "notes.db"
    bogus.write_text("just some text, not SQLite\n" * 10)
    proc = shop.cli("--db", str(bogus), "status", check=False)
    assert_user_error(proc, "not a litequeue database")
    assert bogus.read_text().startswith("just some text")
    import sqlite3

    other = shop.root / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    assert_user_error(shop.cli("--db", str(other), "jobs", "list", check=False), "not a litequeue database")


def test_database_path_that_is_a_folder(shop: Project):
    (shop.root / "adir.db").mkdir()
    assert_user_error(shop.cli("--db", str(shop.root / "adir.db"), "status", check=False), "is a folder")


def test_unknown_job_id(shop: Project):
    shop.cli("enqueue", "add", "--args", "[1, 2]", "--app", "tasks")
    assert_user_error(shop.cli("jobs", "show", "nope", check=False), "no job 'nope'")
    assert_user_error(shop.cli("jobs", "retry", "nope", check=False), "no job 'nope'")


def test_bad_option_value(shop: Project):
    assert_user_error(shop.cli("run-consumer", "tasks", "-w", "0", check=False), "-w")
    assert_user_error(shop.cli("run-consumer", "tasks", "-k", "fiber", check=False), "fiber")


def test_ambiguous_short_task_name(shop: Project):
    shop.write("a.py", "from litequeue import LiteQueue\napp = LiteQueue('x')\n@app.task()\ndef dup(): pass\n"
                       "import b\n")
    shop.write("b.py", "from a import app\n@app.task()\ndef dup(): pass\n")
    assert_user_error(shop.cli("enqueue", "dup", "--app", "a:app", check=False), "ambiguous", "a.dup", "b.dup")
    assert shop.cli("enqueue", "b.dup", "--app", "a:app").returncode == 0


def test_status_text_output(shop: Project):
    shop.cli("enqueue", "send_receipt", "--args", "[1]", "--app", "tasks")
    out = shop.cli("status").stdout
    assert "mail" in out and "consumers alive: 0" in out
    assert json.loads(shop.cli("status", "--json").stdout)["consumers"] == []


@pytest.mark.parametrize("value", ["a\nb", "\x1e", "x\u2028y", "tab\there\r"])
def test_control_characters_in_a_value_stay_on_the_error_line(shop: Project, value: str):
    """A value echoed in an error is shown escaped: a newline, carriage return or a character
    that ``str.splitlines`` breaks on (found by fuzzing LITEQUEUE_CONFIG with ``'\\x1e'``)
    would split the one-line error in two."""
    env_config = dict(shop.env, LITEQUEUE_CONFIG=value)
    for proc in (
        subprocess.run([sys.executable, "-m", "litequeue", "status"], cwd=shop.root, env=env_config,
                       capture_output=True, text=True, timeout=60),
        shop.cli("jobs", "show", value, check=False),
        shop.cli("enqueue", value, "--app", "tasks", check=False),
    ):
        assert_user_error(proc)
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 or lines[0].startswith("Usage:"), proc.stderr
        assert len(lines[-1].strip().splitlines()) == 1 and lines[-1].startswith("Error:"), proc.stderr
