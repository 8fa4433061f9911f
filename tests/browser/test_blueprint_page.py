"""The status page mounted as a blueprint under ``/queue`` of a host application, in a real
Chromium: after the host's login, every link, asset and live-update request stays under the
prefix, the page styles and updates itself (CSP holds), and its Retry form works."""

from __future__ import annotations

import pytest

from tests.browser.conftest import artifact
from tests.conftest import running_consumer, wait_job
from tests.support.host_app import host_app, make_queue, serving

pytestmark = pytest.mark.browser


def test_blueprint_under_a_prefix_in_chromium(page, tmp_path):
    queue = make_queue(tmp_path)
    job_id = queue.boom(3).id
    with running_consumer(queue, workers=1):
        wait_job(queue, job_id, "failed")
    requests: list[str] = []
    with serving(host_app(queue)) as base:
        page.on("request", lambda r: requests.append(r.url))
        missing: list[str] = []
        page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
        page.goto(base + "/queue/jobs")
        assert page.url.startswith(base + "/login")  # the host's login comes first
        page.fill("input[name=password]", "staff")
        page.click("button")
        page.wait_for_url(base + "/queue/jobs")
        page.wait_for_selector(f"a[href='/queue/jobs/{job_id}']")
        hrefs = page.eval_on_selector_all("a[href], form[action], link[href], script[src]",
                                          "els => els.map(e => e.getAttribute('href') || "
                                          "e.getAttribute('action') || e.getAttribute('src'))")
        local = [h for h in hrefs if h.startswith("/")]
        assert local and all(h.startswith("/queue/") for h in local), [h for h in local if not h.startswith("/queue/")]
        # the stylesheet applied (served from the blueprint's static folder)
        assert page.evaluate("getComputedStyle(document.querySelector('header.top')).display") != "inline"
        page.wait_for_timeout(3500)  # one live update (refresh every 3 s)
        page.screenshot(path=str(artifact("blueprint_jobs.png")), full_page=True)
        page.click(f"a[href='/queue/jobs/{job_id}']")
        page.wait_for_url(base + f"/queue/jobs/{job_id}")
        assert page.locator("text=<script>alert(3)</script>").count() >= 1  # shown as text, never run
        page.screenshot(path=str(artifact("blueprint_job.png")), full_page=True)
        page.on("dialog", lambda dialog: dialog.accept())  # "Retry this job ...?"
        page.click("form[action$='/retry'] button")
        page.wait_for_url(lambda url: "/queue/jobs/" in url and job_id not in url)
    same_site = [u for u in requests if u.startswith(base)]
    outside = [u for u in same_site if not u[len(base):].startswith(("/queue/", "/login"))]
    assert outside == [], outside
    assert any("/queue/api/" in u for u in same_site), "no live update request was made"
    assert missing == [] and page.errors == [], (missing, page.errors)
