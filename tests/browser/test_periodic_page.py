"""The Periodic page in a real browser, against a real ``serve-web`` and a real consumer: it
lists stored schedules and the ones in code; Pause, Resume and Run now work."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import artifact
from tests.conftest import Project, wait_for
from tests.web.conftest import start_web

pytestmark = pytest.mark.browser

TASKS = """
from litequeue import LiteQueue, crontab

app = LiteQueue("reports")

@app.task(queue="reports")
def report(kind):
    return f"{kind} report"

@app.periodic_task(crontab(minute="0", hour="3"))
def nightly_cleanup():
    return "clean"
"""


def test_pause_resume_and_run_now_from_the_periodic_page(project: Project, page: Any) -> None:
    from playwright.sync_api import expect

    project.write("tasks.py", TASKS)
    project.extra_env["LITEQUEUE_APP"] = "tasks"
    project.cli("schedules", "add", "weekly-sales", "--cron", "0 8 * * 1", "--task", "report",
                "--args", '["sales"]', "--timezone", "Europe/Berlin")
    project.start_consumer("tasks", "-w", "2")
    url = start_web(project, "tasks")

    page.goto(url + "periodic")
    row = page.locator('#schedules tr[data-schedule="weekly-sales"]')
    expect(row).to_contain_text("0 8 * * 1")
    expect(row).to_contain_text("Europe/Berlin")
    expect(row.locator(".state")).to_have_text("enabled")
    expect(page.locator("body")).to_contain_text("tasks.nightly_cleanup")  # the schedule in code

    row.get_by_role("button", name="Pause").click()
    expect(page.locator(".flash")).to_have_text("Schedule weekly-sales paused.")
    expect(row.locator(".state")).to_have_text("paused")
    assert project.cli_json("schedules", "list", "--json")[0]["enabled"] is False
    row.get_by_role("button", name="Resume").click()
    expect(page.locator(".flash")).to_have_text("Schedule weekly-sales resumed.")
    expect(row.locator(".state")).to_have_text("enabled")

    row.get_by_role("button", name="Run now").click()
    flash = page.locator(".flash").inner_text()
    found = re.fullmatch(r"Schedule weekly-sales run now as job (\S+)\.", flash)
    assert found, flash
    job_id = found.group(1)
    wait_for(lambda: project.query("SELECT status FROM lq_job WHERE id = ?", (job_id,)) == [("succeeded",)], 30,
             what="the job of Run now to succeed")
    page.reload()
    expect(row.locator(".badge").last).to_have_text("succeeded")
    expect(row.locator(f'a[title="{job_id}"]')).to_be_visible()
    page.screenshot(path=str(artifact("periodic.png")), full_page=True)
    assert page.errors == []
