"""The Stats view in a real browser: reached from the navigation, its chart drawn (bars with
height for the hour that had runs, the p95 line), the table filled, no script or CSP error."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import artifact
from tests.conftest import Project
from tests.web.conftest import start_web

pytestmark = pytest.mark.browser

TASKS = """
import time
from litequeue import LiteQueue

app = LiteQueue("stats")

@app.task()
def nap(seconds):
    time.sleep(seconds)

@app.task(retries=1, retry_delay=0)
def broken():
    raise ValueError("always")
"""


def test_stats_chart_renders(project: Project, page: Any) -> None:
    from playwright.sync_api import expect

    project.write("tasks.py", TASKS)
    project.python("import tasks\nfor s in (0.05, 0.1, 0.2, 0.05):\n    tasks.nap(s)\ntasks.broken()\n")
    project.cli("run-consumer", "tasks", "--burst", "-w", "2")
    url = start_web(project)

    page.goto(url)
    page.get_by_role("link", name="Stats", exact=True).click()
    expect(page).to_have_url(f"{url}stats")
    expect(page.locator("#stats-table tbody")).to_contain_text("nap")
    expect(page.locator("#stats-table tfoot")).to_contain_text("Total")
    chart = page.locator("#stats-chart")
    expect(chart).to_be_visible()
    assert chart.bounding_box()["height"] > 50
    bars = page.locator("#stats-chart g.hour rect.ok")
    assert bars.count() in (24, 25)
    # the hour(s) that just ran have bars, the tallest of full height; the empty hours have none
    heights = [float(h) for h in bars.evaluate_all("els => els.map(e => e.getAttribute('height'))")]
    assert max(heights) > 100 and heights[-1] > 0 and sum(1 for h in heights if h > 0) <= 2
    assert page.locator("#stats-p95").get_attribute("points")
    # and the browser laid it out: the tallest bar has real pixels on screen
    assert bars.nth(heights.index(max(heights))).bounding_box()["height"] > 20
    page.select_option("select[name=by]", "hour")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#stats-table thead")).to_contain_text("Hour")
    page.screenshot(path=str(artifact("stats-page.png")), full_page=True)
    assert page.errors == []
