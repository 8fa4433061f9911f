"""Every status page on a demo ledger (seven queues, failed jobs with long errors, batches,
long jobs, an open breaker, a stored schedule, a paused queue, a consumer running), in a real
Chromium at 390 px and 1280 px: no sideways scroll of the page, a menu that collapses, 40 px
touch targets, every action reachable by keyboard, and each new action changing the ledger
as it says. One demo and one browser for the module."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import artifact
from tests.browser.demo import Demo, build
from tests.conftest import wait_for
from tests.web.conftest import start_web

pytestmark = pytest.mark.browser

PHONE, DESKTOP = (390, 844), (1280, 860)


class Site:
    def __init__(self, demo: Demo, url: str) -> None:
        self.demo, self.url = demo, url.rstrip("/")

    def pages(self) -> dict[str, str]:
        return {"overview": "/", "jobs": "/jobs", "jobs-failed": "/jobs?status=failed",
                "job": f"/jobs/{self.demo.ids['failed'][-1]}", "running": "/running", "consumers": "/consumers",
                "queue": "/queue/payments", "periodic": "/periodic", "batches": "/batches",
                "batch": f"/batches/{self.demo.ids['running_batch']}", "stats": "/stats",
                "retrying": "/jobs?status=retrying"}

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{self.demo.db}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


class _Project:
    """What ``start_web`` needs of a project: root, env and a list to put the process on."""

    def __init__(self, demo: Demo) -> None:
        self.root, self.env, self.procs = demo.root, demo.env, demo.procs


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    demo = build(tmp_path_factory.mktemp("demo"))
    try:
        yield Site(demo, start_web(_Project(demo), "tasks", "--refresh", "1"))  # type: ignore[arg-type]
    finally:
        demo.stop()


@pytest.fixture
def tab(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page of the given viewport size (``@pytest.mark.parametrize("tab", [...], indirect=True)``)."""
    width, height = getattr(request, "param", DESKTOP)
    context = browser.new_context(viewport={"width": width, "height": height}, timezone_id="Europe/Berlin")
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.set_default_timeout(20_000)
    yield page
    context.close()


OVERFLOW = "() => [document.documentElement.scrollWidth, window.innerWidth]"
#: Controls smaller than 40 px high (visible ones only), as "tag text height".
SMALL_TARGETS = """() => Array.from(document.querySelectorAll(
    'button, .btn, select, input:not([type=hidden]), header nav a, summary'))
  .filter((e) => e.offsetParent !== null && e.type !== 'checkbox' && e.tagName !== 'SUMMARY')
  .map((e) => [e.tagName + ' ' + (e.textContent || e.name || '').trim().slice(0, 20), e.getBoundingClientRect().height])
  .filter(([, h]) => h < 40)"""
SMALL_CHECKBOXES = """() => Array.from(document.querySelectorAll('input[type=checkbox]'))
  .filter((e) => e.offsetParent !== null)
  .map((e) => { const r = e.getBoundingClientRect(); return r.height + 20; }).filter((h) => h < 40)"""


@pytest.mark.parametrize("tab", [PHONE, DESKTOP], indirect=True, ids=["390px", "1280px"])
def test_every_page_fits_without_sideways_scroll(site: Site, tab: Any) -> None:
    width = tab.viewport_size["width"]
    for name, path in site.pages().items():
        tab.goto(site.url + path)
        scroll, inner = tab.evaluate(OVERFLOW)
        assert scroll <= inner, f"{name} at {width} px is {scroll} px wide"
        if width == PHONE[0]:
            assert tab.evaluate(SMALL_TARGETS) == [], f"{name}: touch targets under 40 px"
            assert tab.evaluate(SMALL_CHECKBOXES) == [], f"{name}: checkboxes under 40 px with their margin"
            assert not tab.locator("header nav").is_visible(), f"{name}: the menu should be collapsed"
        tab.screenshot(path=str(artifact(f"layout-{name}-{width}.png")), full_page=True)
    assert tab.errors == []


@pytest.mark.parametrize("tab", [PHONE], indirect=True, ids=["390px"])
def test_phone_menu_opens_inside_the_dark_header(site: Site, tab: Any) -> None:
    from playwright.sync_api import expect

    tab.goto(site.url + "/")
    tab.locator("#menu").focus()
    tab.keyboard.press("Enter")
    expect(tab.locator("header nav")).to_be_visible()
    expect(tab.locator("#menu")).to_have_attribute("aria-expanded", "true")
    header = tab.locator("header").bounding_box()
    for link in tab.locator("header nav a").all():
        box = link.bounding_box()
        assert box["y"] + box["height"] <= header["y"] + header["height"] + 0.5, "a menu link runs past the header"
        assert box["x"] + box["width"] <= PHONE[0]
    tab.locator("header nav a", has_text="Consumers").click()
    assert tab.url.endswith("/consumers")
    # The first screen is not a stack of full-width number cards: two per row.
    tab.goto(site.url + "/")
    boxes = [c.bounding_box() for c in tab.locator(".cards > .card").all()]
    assert boxes[0]["y"] == boxes[1]["y"] and boxes[0]["width"] < PHONE[0] / 2


def test_numbers_times_and_wording_are_for_people(site: Site, tab: Any) -> None:
    tab.goto(site.url + "/")
    assert re.fullmatch(r"\d{1,3}(,\d{3})*", tab.locator("#t-today").inner_text())
    updated = tab.locator("#updated time")
    assert "Berlin" in updated.inner_text() and "UTC" in updated.get_attribute("title")
    tab.goto(site.url + "/consumers")
    assert "6 threads" in tab.locator("#consumers").inner_text()
    tab.goto(site.url + f"/jobs/{site.demo.ids['long'][0]}")
    progress = tab.locator("#progress").inner_text()
    assert re.fullmatch(r"\d+/200 \(\d+%\)( · about .+ left)?", progress), progress
    tab.goto(site.url + "/jobs?task=tasks.send_receipt")
    assert "of 120" in tab.locator("#total-line").inner_text()
    tab.goto(site.url + "/jobs?status=failed&queue=payments")
    cut = tab.locator("#jobs td.err details").first
    cut.locator("summary").click()
    assert "the order stays open" in cut.inner_text()  # the whole error, from the list
    tab.goto(site.url + "/periodic")
    # heartbeat_report runs every 5 minutes: its countdown ("in 3 m 12 s") moves every second.
    countdown = tab.locator("#code-tasks time:not(.abs)").first
    before = countdown.inner_text()
    wait_for(lambda: countdown.inner_text() != before, 5, what="the countdown to move")
    assert tab.errors == []


def tabbable(tab: Any) -> set[str]:
    """Press Tab through the whole page; the actions (buttons, checkboxes, summaries) reached."""
    total = tab.evaluate("""() => { let i = 0;
        document.querySelectorAll('main button, main input[type=checkbox], main summary, main a.btn').forEach(
          (e) => { if (e.offsetParent !== null) e.dataset.kb = String(i++); }); return i; }""")
    seen: set[str] = set()
    stops = tab.evaluate("() => document.querySelectorAll('a[href], button, input, select, summary').length")
    tab.locator("body").focus()
    for _ in range(stops + 10):
        tab.keyboard.press("Tab")
        kb = tab.evaluate("() => document.activeElement && document.activeElement.dataset.kb")
        if kb is not None:
            seen.add(kb)
        if len(seen) == total:
            break
    missing = tab.evaluate("(seen) => Array.from(document.querySelectorAll('[data-kb]')).filter((e) => "
                           "!seen.includes(e.dataset.kb)).map((e) => e.outerHTML.slice(0, 80))", sorted(seen))
    assert missing == [], f"not reachable by keyboard: {missing}"
    return seen


def test_every_action_is_reachable_by_keyboard(site: Site, tab: Any) -> None:
    for name in ("overview", "jobs-failed", "job", "running", "consumers", "queue", "batch", "periodic"):
        tab.goto(site.url + site.pages()[name])
        assert tabbable(tab), f"{name} has no action"


def accept_dialogs(tab: Any) -> None:
    tab.on("dialog", lambda d: d.accept())


def test_bulk_retry_then_discard_all_matching(site: Site, tab: Any) -> None:
    accept_dialogs(tab)
    tab.goto(site.url + "/jobs?status=failed&queue=payments")
    picks = tab.locator('#jobs input[name="ids"]')
    chosen = [picks.nth(i).get_attribute("value") for i in range(2)]
    for i in range(2):
        picks.nth(i).focus()
        tab.keyboard.press("Space")
    assert tab.locator("#picked").inner_text() == "2 selected"
    tab.get_by_role("button", name="Retry", exact=True).click()
    tab.wait_for_url(re.compile(r"/jobs\?"))
    assert "Retried 2 jobs." in tab.locator(".flash").inner_text()
    assert {r[0] for r in site.rows(f"SELECT retried_from FROM lq_job WHERE retried_from IN ({','.join('?' * 2)})",
                                    tuple(chosen))} == set(chosen)
    # These two jobs' events: the module's other tests retry by web too, in either order.
    assert site.rows(f"SELECT COUNT(*) FROM lq_event WHERE action = 'retry' AND actor = 'web' "
                     f"AND job_id IN ({','.join('?' * 2)})", tuple(chosen)) == [(2,)]

    tab.goto(site.url + "/jobs?status=failed&queue=webhooks")
    n = site.rows("SELECT COUNT(*) FROM lq_job WHERE status = 'failed' AND queue = 'webhooks'")[0][0]
    assert n >= 3
    tab.locator("#all-matching").check()
    tab.get_by_role("button", name="Discard").click()
    tab.wait_for_url(re.compile(r"/jobs\?"))
    assert f"Discarded {n} jobs." in tab.locator(".flash").inner_text()
    assert site.rows("SELECT COUNT(*) FROM lq_job WHERE status = 'failed' AND queue = 'webhooks'") == [(0,)]
    assert site.rows("SELECT COUNT(*) FROM lq_event WHERE action = 'discard' AND queue = 'webhooks'") == [(n,)]
    assert tab.errors == []


def test_discard_one_purge_a_queue_reset_a_breaker_retry_a_batch(site: Site, tab: Any) -> None:
    accept_dialogs(tab)
    victim = site.rows("SELECT id FROM lq_job WHERE status = 'failed' AND queue = 'payments' AND retried_as IS NULL "
                       "ORDER BY seq LIMIT 1")[0][0]
    tab.goto(site.url + f"/jobs/{victim}")
    tab.locator("#discard").click()
    tab.wait_for_url(re.compile(r"/jobs"))
    assert site.rows("SELECT COUNT(*) FROM lq_job WHERE id = ?", (victim,)) == [(0,)]

    tab.goto(site.url + "/queue/newsletters")
    assert "Paused" in tab.locator(".note").inner_text()
    tab.locator("#purge").click()
    tab.wait_for_url(re.compile(r"/queue/newsletters"))
    assert "25 queued jobs dropped" in tab.locator(".flash").inner_text()
    assert site.rows("SELECT COUNT(*) FROM lq_job WHERE queue = 'newsletters' AND status = 'cancelled'") == [(25,)]

    tab.goto(site.url + "/")
    tab.locator("#limits").get_by_role("button", name="Reset").click()
    tab.wait_for_url(re.compile(r"/$"))
    assert site.rows("SELECT actor FROM lq_event WHERE action = 'breaker-reset'") == [("web",)]

    tab.goto(site.url + f"/batches/{site.demo.ids['done_batch']}")
    bar = tab.locator("svg.bar").first
    assert bar.locator("rect.ok").get_attribute("width") == "96.77"  # 60 of 62: mostly green, not red
    tab.locator("#member-status").select_option("failed")
    tab.get_by_role("button", name="Show").click()
    assert tab.locator("#total-line").inner_text() == "1–2 of 2"
    tab.locator("#retry-batch-failed").click()
    tab.wait_for_url(re.compile(r"/batches/"))
    assert "Retried 2 failed members" in tab.locator(".flash").inner_text()
    assert site.rows("SELECT COUNT(*) FROM lq_job j JOIN lq_job f ON f.id = j.retried_from WHERE f.batch_id = ?",
                     (site.demo.ids["done_batch"],)) == [(2,)]
    assert tab.errors == []


def test_quiet_then_stop_a_consumer_from_the_page(site: Site, tab: Any) -> None:
    accept_dialogs(tab)
    proc = site.demo.spawn("run-consumer", "tasks", "-w", "2", "-Q", "images", log="extra.log")
    wait_for(lambda: len(site.rows("SELECT id FROM lq_consumer WHERE status = 'running'")) == 2, 30,
             what="a second consumer")
    cid = site.rows("SELECT id FROM lq_consumer WHERE status = 'running' AND queues = 'images'")[0][0]
    tab.goto(site.url + "/consumers")
    row = tab.locator(f'tr[data-consumer="{cid}"]')
    row.get_by_role("button", name="Quiet").click()
    asked = time.monotonic()
    wait_for(lambda: site.rows("SELECT obeyed FROM lq_consumer WHERE id = ?", (cid,)) == [("quiet",)], 5,
             what="the consumer to go quiet")
    assert time.monotonic() - asked < 3
    tab.goto(site.url + "/consumers")
    assert row.locator(".badge").inner_text() == "quiet"
    row.get_by_role("button", name="Stop").click()
    assert proc.wait(15) == 0  # a graceful stop: it exits by itself
    assert site.rows("SELECT status, obeyed FROM lq_consumer WHERE id = ?", (cid,)) == [("stopped", "stop")]
    assert [a for (a,) in site.rows("SELECT action FROM lq_event WHERE detail = ?", (f"consumer {cid}",))] == \
        ["quiet", "stop"]


def test_running_page_shows_the_long_jobs(site: Site, tab: Any) -> None:
    tab.goto(site.url + "/running")
    for job_id in site.demo.ids["long"]:
        row = tab.locator(f'tr[data-job="{job_id}"]')
        assert "build_report" in row.inner_text() and "/200" in row.inner_text()
    shown = tab.locator("#running .since").first.inner_text()
    wait_for(lambda: tab.locator("#running .since").first.inner_text() != shown, 5, what="time running to count")
    assert tab.errors == []
