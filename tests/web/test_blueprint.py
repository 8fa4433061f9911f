"""The status page as a blueprint mounted under ``/queue`` of a host Flask application, over
real HTTP: every link, form, asset and live-update URL carries the prefix, the host's login
guards it, CSRF and escaping hold, and the host's templates and filters stay its own."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest

from litequeue.base.errors import ConfigurationError
from tests.conftest import running_consumer, wait_job
from tests.support.host_app import host_app, make_queue, serving

URL_ATTR = re.compile(r'(?:href|src|action|data-root|data-api|data-live)="([^"]*)"')


class Browser:
    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> tuple[int, str, str]:
        try:
            with self.opener.open(self.base + path, timeout=10) as resp:
                return resp.status, resp.geturl(), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.geturl(), exc.read().decode()

    def post(self, path: str, form: dict[str, str], origin: bool = True) -> tuple[int, str, str]:
        headers = {"Origin": self.base} if origin else {}
        req = urllib.request.Request(self.base + path, data=urllib.parse.urlencode(form).encode(), headers=headers)
        try:
            with self.opener.open(req, timeout=10) as resp:
                return resp.status, resp.geturl(), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.geturl(), exc.read().decode()


@pytest.fixture
def failed_job(tmp_path):
    queue = make_queue(tmp_path)
    job_id = queue.boom(7).id
    with running_consumer(queue, workers=1):
        wait_job(queue, job_id, "failed")
    return queue, job_id


def test_the_page_under_a_prefix_behind_the_hosts_login(failed_job):
    queue, job_id = failed_job
    with serving(host_app(queue)) as base:
        browser = Browser(base)
        status, url, body = browser.get("/queue/jobs")
        assert url.startswith(base + "/login?next=/queue/jobs")  # the host's login guards the page
        status, url, body = browser.post("/login?next=/queue/jobs", {"password": "staff"})
        assert status == 200 and url == base + "/queue/jobs"
        assert "HOST BASE" not in body and "HOST AGO" not in body  # the page's own templates and filters
        for path in ("/queue/", f"/queue/jobs/{job_id}", "/queue/periodic", "/queue/batches", "/queue/stats",
                     "/queue/consumers"):
            status, _, page = browser.get(path)
            assert status == 200, path
            urls = [u for u in URL_ATTR.findall(page) if u.startswith("/")]
            assert urls and all(u.startswith("/queue/") for u in urls), (path, [u for u in urls
                                                                              if not u.startswith("/queue/")])
        status, _, page = browser.get(f"/queue/jobs/{job_id}")
        assert "<script>alert(7)</script>" not in page and "&lt;script&gt;alert(7)&lt;/script&gt;" in page
        assert browser.get("/queue/static/style.css")[0] == 200
        assert browser.get("/queue/api/overview")[1].endswith("/queue/api/overview")
        assert browser.get("/")[2] == "HOST BASE home"  # the host's own pages keep their templates

        # a POST without the page's CSRF token is refused; with it, the retry runs and stays under /queue
        assert browser.post(f"/queue/jobs/{job_id}/retry", {})[0] == 403
        assert browser.post(f"/queue/jobs/{job_id}/retry", {"csrf_token": "x"}, origin=False)[0] == 403
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        status, url, _ = browser.post(f"/queue/jobs/{job_id}/retry", {"csrf_token": token})
        assert status == 200 and re.fullmatch(re.escape(base) + r"/queue/jobs/[\w-]+", url) and job_id not in url


def test_without_login_nothing_of_the_page_is_served(failed_job):
    queue, job_id = failed_job
    with serving(host_app(queue)) as base:
        browser = Browser(base)
        for path in (f"/queue/jobs/{job_id}", "/queue/api/jobs", "/queue/metrics"):
            _, url, body = browser.get(path)
            assert "/login" in url and job_id not in body


def test_init_app_reads_litequeue_keys_and_the_page_needs_a_secret_key(tmp_path):
    from flask import Flask

    from litequeue import LiteQueue

    queue = LiteQueue("cfg")
    app = Flask("cfg")
    app.config.update(LITEQUEUE_DB=str(tmp_path / "cfg.db"), LITEQUEUE_DURABILITY="fast", LITEQUEUE_BUSY_TIMEOUT=7)
    queue.init_app(app)
    assert (queue.db_target, queue.durability, queue.busy_timeout) == (str(tmp_path / "cfg.db"), "fast", 7.0)
    assert app.extensions["litequeue"] is queue
    import litequeue_web

    app.register_blueprint(litequeue_web.blueprint(queue), url_prefix="/q")
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(ConfigurationError, match="set app.secret_key"):
        app.test_client().get("/q/")
    app.config["LITEQUEUE_DB"] = str(tmp_path / "other.db")
    queue.init_app(app)  # again, elsewhere: the queue reopens there
    queue.storage.sql("SELECT 1")
    assert (tmp_path / "other.db").exists() and queue.db_target == str(tmp_path / "other.db")
