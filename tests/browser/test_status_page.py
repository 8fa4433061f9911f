"""The status page in a real browser, against a real ``serve-web`` and a real consumer:
a failure shows up live, its traceback is readable, and retry makes it succeed."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

from tests.browser.conftest import artifact
from tests.conftest import ROOT, Project
from tests.web.conftest import start_web

pytestmark = pytest.mark.browser

TASKS = """
import os
from litequeue import LiteQueue

app = LiteQueue("shop")
FLAG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gateway-up")

@app.task(queue="payments")
def charge(order_id):
    if not os.path.exists(FLAG):
        raise RuntimeError(f"payment gateway down, order {order_id} not charged")
    return {"order": order_id, "charged": True}

@app.task(queue="mail")
def send_receipt(order_id, email):
    return f"sent to {email}"
"""


def enqueue(project: Project, task: str, args: str) -> str:
    return project.cli("enqueue", task, "--args", args, "--app", "tasks").stdout.strip()


def test_failure_appears_live_then_retry_succeeds(project: Project, page: Any) -> None:
    from playwright.sync_api import expect

    project.write("tasks.py", TASKS)
    for n in range(3):
        enqueue(project, "send_receipt", f'[{n}, "ann{n}@example.com"]')
    project.cli("enqueue", "send_receipt", "--args", '[7, "later@example.com"]', "--delay", "3600", "--app", "tasks")
    project.start_consumer("tasks", "-w", "2")
    project.wait_status("succeeded", 3)
    url = start_web(project, "tasks", "--refresh", "0.5")

    page.goto(url)
    expect(page.locator("#t-failed")).to_have_text("0")
    expect(page.locator("#t-scheduled")).to_have_text("1")
    page.evaluate("window.__sameDocument = true")
    job_id = enqueue(project, "charge", "[1042]")
    # The failure shows up without a reload: same document, fresh numbers.
    expect(page.locator("#t-failed")).to_have_text("1")
    expect(page.locator("#queues")).to_contain_text("payments")
    assert page.evaluate("window.__sameDocument") is True
    expect(page.locator("#live")).to_have_text("● live")
    page.screenshot(path=str(artifact("overview.png")), full_page=True)
    readme_shot = ROOT / "docs" / "screenshot-overview.png"
    # The README's picture is refreshed on request only, so a test run leaves the tree clean.
    if os.environ.get("LITEQUEUE_UPDATE_SCREENSHOTS") == "1" or not readme_shot.exists():
        readme_shot.parent.mkdir(exist_ok=True)
        shutil.copyfile(artifact("overview.png"), readme_shot)

    page.click("#t-failed")
    expect(page.locator("#jobs")).to_contain_text(job_id[-8:])
    # The job list's first page refreshes too: a second failure appears in place.
    page.evaluate("window.__sameDocument = true")
    second = enqueue(project, "charge", "[1043]")
    expect(page.locator("#jobs")).to_contain_text(second[-8:])
    assert page.evaluate("window.__sameDocument") is True
    page.click(f'#jobs a[title="{job_id}"]')
    expect(page.locator("h1 .badge")).to_have_text("failed")
    expect(page.locator("#traceback")).to_contain_text("Traceback (most recent call last)")
    expect(page.locator("#traceback")).to_contain_text("RuntimeError: payment gateway down, order 1042 not charged")
    page.screenshot(path=str(artifact("job-failed.png")), full_page=True)

    (project.root / "gateway-up").write_text("")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Retry").click()
    expect(page.locator("#retried-from")).to_contain_text(job_id)
    expect(page.locator("h1 .badge")).to_have_text("succeeded")
    expect(page.locator("#result")).to_contain_text('"charged": true')
    new_id = page.locator("#job-id").inner_text()
    assert new_id != job_id
    assert project.query("SELECT status, retried_from FROM lq_job WHERE id = ?", (new_id,)) == [("succeeded", job_id)]
    assert project.query("SELECT action, actor FROM lq_event WHERE job_id = ?", (job_id,)) == [("retry", "web")]
    assert project.query("SELECT status FROM lq_job WHERE id = ?", (second,)) == [("failed",)]  # not retried
    page.screenshot(path=str(artifact("job-retried.png")), full_page=True)
    assert page.errors == []


def test_refresh_never_overlaps_and_pauses_while_hidden(project: Project, page: Any) -> None:
    project.write("tasks.py", TASKS)
    enqueue(project, "send_receipt", '[1, "a@example.com"]')
    url = start_web(project, "--refresh", "0.2")
    log: list[tuple[str, str]] = []
    page.on("request", lambda r: log.append(("start", r.url)) if "/api/overview" in r.url else None)
    page.on("requestfinished", lambda r: log.append(("end", r.url)) if "/api/overview" in r.url else None)
    page.on("requestfailed", lambda r: log.append(("end", r.url)) if "/api/overview" in r.url else None)
    page.goto(url)
    page.wait_for_function("() => document.getElementById('live').textContent === '● live'")
    # The observation windows below are the behaviour under test (what happens over time),
    # not waits for a condition.
    page.wait_for_timeout(1500)
    running = 0
    for kind, _ in log:
        running += 1 if kind == "start" else -1
        assert running in (0, 1), "two refreshes were in flight at once"
    assert sum(1 for k, _ in log if k == "start") >= 3
    page.evaluate("""() => {
        Object.defineProperty(document, 'hidden', {value: true, configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    page.wait_for_timeout(400)  # let a request that was already in flight finish
    before = len(log)
    page.wait_for_timeout(1200)
    assert len(log) == before, "the page kept refreshing while hidden"
    assert page.locator("#live").inner_text() == "● paused"
    page.evaluate("""() => {
        Object.defineProperty(document, 'hidden', {value: false, configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    page.wait_for_function("() => document.getElementById('live').textContent === '● live'")
    assert len(log) > before
    assert page.errors == []


def test_a_job_that_fails_before_the_lists_first_refresh_still_appears(project: Project, page: Any) -> None:
    """The job list's first live refresh is compared with the rows the server rendered, not
    taken as what the page shows: a job that failed between the page load and that refresh
    appears (it used to be taken as already shown, and never was)."""
    from playwright.sync_api import expect

    project.write("tasks.py", TASKS)
    first = enqueue(project, "charge", "[1]")
    project.start_consumer("tasks", "-w", "2")
    project.wait_status("failed", 1)
    url = start_web(project, "tasks", "--refresh", "3")
    page.goto(url + "jobs?status=failed")
    expect(page.locator("#jobs")).to_contain_text(first[-8:])
    second = enqueue(project, "charge", "[2]")  # fails at once, well before the refresh 3 s on
    project.wait_status("failed", 2)
    expect(page.locator("#jobs")).to_contain_text(second[-8:], timeout=10_000)
