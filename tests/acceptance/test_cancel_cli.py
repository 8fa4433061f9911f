"""``litequeue jobs cancel ID --wait S`` against a real consumer process, on a job that never
checks for cancellation: it ends ``cancelled`` after the grace period and the command says so
in one line; the consumer goes on with the next job."""

from __future__ import annotations

import pytest

from tests.conftest import Project, wait_for

TASKS = """
import asyncio, time
from litequeue import LiteQueue
app = LiteQueue("cancelshop")

@app.task(retries=3)
def stubborn():
    while True:          # never looks at current_job()
        time.sleep(60)

@app.task(retries=3)
async def stubborn_async():
    while True:
        await asyncio.sleep(0.05)

@app.task()
def after():
    return "ran"
"""


def _status(project: Project, job_id: str) -> str | None:
    """The job's status, read straight from the database (cheaper than a CLI process)."""
    url = project.extra_env.get("LITEQUEUE_DB")
    if url is None:
        rows = project.query("SELECT status FROM lq_job WHERE id = ?", (job_id,))
    else:
        import psycopg2

        conn = psycopg2.connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT status FROM lq_job WHERE id = %s", (job_id,))
                rows = cur.fetchall()
        finally:
            conn.close()
    return rows[0][0] if rows else None


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_jobs_cancel_wait_stops_a_job_that_never_checks(project: Project, request: pytest.FixtureRequest,
                                                        db: str) -> None:
    project.write("tasks.py", TASKS)
    if db == "postgres":
        project.extra_env["LITEQUEUE_DB"] = request.getfixturevalue("pg_url")
    project.cli("migrate")
    project.start_consumer("tasks", "-w", "1", "--cancel-grace", "1")
    job_id = project.cli("enqueue", "stubborn", "--app", "tasks").stdout.strip()
    wait_for(lambda: _status(project, job_id) == "running", 30, interval=0.2, what="the job to run")
    out = project.cli("jobs", "cancel", job_id, "--wait", "10").stdout.strip().splitlines()
    assert len(out) == 1, out
    assert out[0].startswith(f"{job_id}: cancelled after "), out
    assert "cancelled by litequeue jobs cancel (" in out[0] and "1s grace period" in out[0], out
    job = project.cli_json("jobs", "show", job_id, "--json")
    assert job["attempts"] == 1 and job["attempt_list"][0]["outcome"] == "cancelled"
    # Too short a wait: it says so, and exits 1; the job still ends cancelled.
    second = project.cli("enqueue", "stubborn", "--app", "tasks").stdout.strip()
    wait_for(lambda: _status(project, second) == "running", 30, interval=0.2, what="the second job to run")
    proc = project.cli("jobs", "cancel", second, "--wait", "0.1", check=False)
    assert proc.returncode == 1
    assert proc.stdout.strip().startswith(f"{second}: still running after 0.1s")
    wait_for(lambda: _status(project, second) == "cancelled", 30, interval=0.2, what="the second job to end")
    # The same one-worker consumer runs the next job.
    nxt = project.cli("enqueue", "after", "--app", "tasks").stdout.strip()
    wait_for(lambda: _status(project, nxt) == "succeeded", 30, interval=0.2, what="the next job to run")
    assert project.cli("jobs", "cancel", job_id).stdout.strip() == f"{job_id}: already cancelled"


def test_the_pages_cancel_button_stops_a_running_job(project: Project) -> None:
    import http.cookiejar
    import re
    import urllib.parse
    import urllib.request

    from tests.web.conftest import start_web

    project.write("tasks.py", TASKS)
    project.cli("migrate")
    project.start_consumer("tasks", "-w", "1", "--cancel-grace", "1")
    url = start_web(project)
    job_id = project.cli("enqueue", "stubborn", "--app", "tasks").stdout.strip()
    wait_for(lambda: _status(project, job_id) == "running", 30, interval=0.2, what="the job to run")
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(f"{url}jobs/{job_id}", timeout=10).read().decode()
    form = re.search(r'<form[^>]*action="(/jobs/[^"]+/cancel)"[^>]*>.*?name="csrf_token" value="([^"]+)"'
                     r'.*?<button[^>]*>\s*([^<]+?)\s*</button>', page, re.S)
    assert form, "no Cancel form on the running job's page"
    action, token, label = form.groups()
    assert label == "Cancel"
    post = urllib.request.Request(url.rstrip("/") + action, data=urllib.parse.urlencode(
        {"csrf_token": token}).encode(), headers={"Origin": url.rstrip("/")}, method="POST")
    assert opener.open(post, timeout=10).status == 200  # redirected back to the job's page
    wait_for(lambda: _status(project, job_id) == "cancelled", 15, interval=0.2, what="the job to end cancelled")
    job = project.cli_json("jobs", "show", job_id, "--json")
    assert job["attempt_list"][0]["error"].startswith("cancelled by web; stopped after its 1s grace period")
