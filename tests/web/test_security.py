"""Safe defaults: loopback only without a password, Basic auth, read-only mode, Host check."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from litequeue.base.errors import ConfigurationError
from litequeue_web import check_bind, read_password_file
from tests.conftest import Project
from tests.web.conftest import ORIGIN, MakeApp, Seeded, query


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_no_password(host: str) -> None:
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.org"])
def test_other_addresses_need_a_password(host: str) -> None:
    with pytest.raises(ConfigurationError, match="--password-file"):
        check_bind(host, None)
    check_bind(host, "s3cret")


def test_password_file(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_text("s3cret\nignored\n")
    assert read_password_file(f) == "s3cret"
    f.write_text("\n")
    with pytest.raises(ConfigurationError, match="empty"):
        read_password_file(f)
    with pytest.raises(ConfigurationError, match="cannot read"):
        read_password_file(tmp_path / "missing")


def test_serve_web_refuses_a_public_address_without_a_password(project: Project) -> None:
    proc = project.cli("serve-web", "--host", "0.0.0.0", "--port", "0", check=False, timeout=30)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: refusing to serve the status page on 0.0.0.0 without a password")
    assert "--password-file" in lines[0] and "LITEQUEUE_WEB_PASSWORD_FILE" in lines[0]


def test_basic_auth_guards_everything_but_livez(make_app: MakeApp) -> None:
    client = make_app(password="s3cret").test_client()
    for path in ("/", "/jobs", "/api/overview", "/metrics", "/readyz"):
        r = client.get(path)
        assert r.status_code == 401, path
        assert r.headers["WWW-Authenticate"].startswith("Basic")
    assert client.get("/", headers=basic("admin", "wrong")).status_code == 401
    assert client.get("/", headers=basic("admin", "s3cre")).status_code == 401
    assert client.get("/", headers=basic("admin", "s3cret")).status_code == 200
    assert client.get("/metrics", headers=basic("prometheus", "s3cret")).status_code == 200
    assert client.get("/livez").status_code == 200


def test_basic_auth_applies_to_posts(make_app: MakeApp, web_db: Path) -> None:
    client = make_app(password="s3cret").test_client()
    r = client.post("/queues/pause", data={"queue": "mail"}, headers=ORIGIN)
    assert r.status_code == 401
    assert query(web_db, "SELECT COUNT(*) FROM lq_event") == [(0,)]


def test_read_only_hides_and_refuses_every_action(make_app: MakeApp, seeded: Seeded, web_db: Path) -> None:
    client = make_app(read_only=True).test_client()
    for path in ("/", "/jobs?status=failed", f"/jobs/{seeded.ids['boom2']}", f"/jobs/{seeded.ids['later']}",
                 "/jobs/retry-failed", "/periodic"):
        html = client.get(path).get_data(as_text=True)
        assert 'method="post"' not in html, path
        assert "Retry all failed" not in html and ">Pause<" not in html, path
        assert "read-only" in html
    with client.session_transaction() as session:
        session["csrf"] = "known-token"
    for path, data in ((f"/jobs/{seeded.ids['boom2']}/retry", {}), (f"/jobs/{seeded.ids['later']}/cancel", {}),
                       ("/jobs/retry-failed", {}), ("/queues/pause", {"queue": "mail"}),
                       ("/queues/resume", {"queue": "mail"}), ("/periodic/pause", {"name": "nightly"}),
                       ("/periodic/resume", {"name": "nightly"}), ("/periodic/run", {"name": "tasks.tick"})):
        r = client.post(path, data={"csrf_token": "known-token", **data}, headers=ORIGIN)
        assert r.status_code == 403, path
        assert "read-only" in r.get_data(as_text=True)
    assert query(web_db, "SELECT COUNT(*) FROM lq_event") == [(0,)]
    assert query(web_db, "SELECT status FROM lq_job WHERE id = ?", (seeded.ids["later"],)) == [("scheduled",)]


def test_loopback_page_answers_only_loopback_host_names(make_app: MakeApp) -> None:
    client = make_app().test_client()
    assert client.get("/", headers={"Host": "localhost:8642"}).status_code == 200
    assert client.get("/", headers={"Host": "127.0.0.1:8642"}).status_code == 200
    r = client.get("/", headers={"Host": "rebound.evil.example:8642"})
    assert r.status_code == 421
    public = make_app(host="0.0.0.0", password="pw").test_client()
    assert public.get("/", headers={"Host": "queue.example.org", **basic("a", "pw")}).status_code == 200


def test_security_headers(make_app: MakeApp) -> None:
    r = make_app().test_client().get("/")
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    cookie = r.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
