"""The Batches page in a real browser: a batch's progress bar moves live as a real consumer
finishes its members (no reload), and ends green once its on_complete job has run."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import artifact
from tests.conftest import Project
from tests.web.conftest import start_web

pytestmark = pytest.mark.browser

TASKS = """
import os, time
from litequeue import LiteQueue

app = LiteQueue("ocr")
HERE = os.path.dirname(os.path.abspath(__file__))

@app.task()
def ocr_page(n):
    # members run in groups of ten, each group once the test opens its gate
    while not os.path.exists(os.path.join(HERE, f"go-{n // 10}")):
        time.sleep(0.05)
    return f"text of page {n}"

@app.task()
def assemble(batch_id):
    return len(app.batch_results(batch_id))
"""


def test_batch_progress_bar_moves_live(project: Project, page: Any) -> None:
    from playwright.sync_api import expect

    project.write("tasks.py", TASKS)
    batch_id = project.python("""
from tasks import app, assemble, ocr_page
with app.batch("ocr acme", on_complete=assemble) as b:
    ocr_page.map(range(30), batch=b)
print(b.id)
""").stdout.strip()
    project.start_consumer("tasks", "-w", "4")
    url = start_web(project, "--refresh", "0.3")

    page.goto(url + "batches")
    row = page.locator(f'tr[data-batch="{batch_id}"]')
    bar = row.locator("svg.bar")
    expect(bar).to_have_attribute("aria-valuenow", "0")
    expect(bar).to_have_attribute("aria-valuemax", "30")
    page.evaluate("window.__sameDocument = true")
    (project.root / "go-0").write_text("")
    expect(bar).to_have_attribute("aria-valuenow", "10")  # moved without a reload
    expect(bar.locator("rect.ok")).to_have_attribute("width", "33.33")
    expect(row).to_contain_text("10/30")
    expect(row.locator(".badge")).to_have_text("running")
    page.screenshot(path=str(artifact("batches-running.png")), full_page=True)
    (project.root / "go-1").write_text("")
    (project.root / "go-2").write_text("")
    expect(bar).to_have_attribute("aria-valuenow", "30")
    expect(row.locator(".badge")).to_have_text("succeeded")  # after its on_complete job ran
    expect(row.locator("td.num").nth(4)).to_have_text("100")
    assert page.evaluate("window.__sameDocument") is True
    page.screenshot(path=str(artifact("batches-done.png")), full_page=True)

    row.get_by_role("link", name="ocr acme").click()
    expect(page.locator("#batch-counts")).to_contain_text("30 of 30 succeeded, 0 failed")
    expect(page.locator("#members tr")).to_have_count(30)
    expect(page.locator("#total-line")).to_have_text("1–30 of 30")
    assert page.errors == []
