"""``litequeue serve-web`` as a real process behind waitress, over real HTTP."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest

from tests.conftest import BOTH_BACKENDS, Project
from tests.web.conftest import TASKS, start_web


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


@BOTH_BACKENDS
def test_serve_web_prints_its_url_and_serves_the_ledger(project: Project) -> None:
    project.write("tasks.py", TASKS)
    project.cli("enqueue", "ok", "--args", "[7]", "--app", "tasks")
    url = start_web(project, "tasks")
    assert url.startswith("http://127.0.0.1:")
    status, headers, body = fetch(url + "livez")
    assert (status, body) == (200, "ok\n")
    assert headers["Server"] == "litequeue"  # waitress, not Flask's development server
    status, _, body = fetch(url + "api/overview")
    assert status == 200 and json.loads(body)["queues"]["default"]["queued"] == 1
    status, _, body = fetch(url + "api/periodic")
    assert {t["task"] for t in json.loads(body)["tasks"]} == {"tasks.tick", "tasks.nightly"}
    assert fetch(url + "readyz")[0] == 200


@BOTH_BACKENDS
def test_serve_web_with_a_password_file(project: Project) -> None:
    project.write("tasks.py", TASKS)
    project.cli("enqueue", "ok", "--args", "[7]", "--app", "tasks")
    (project.root / "pw").write_text("hunter2\n")
    url = start_web(project, "--password-file", str(project.root / "pw"), "--read-only")
    assert fetch(url)[0] == 401
    auth = {"Authorization": "Basic " + base64.b64encode(b"me:hunter2").decode()}
    status, _, body = fetch(url, auth)
    assert status == 200 and "read-only" in body and 'method="post"' not in body


def test_serve_web_before_the_database_exists(project: Project) -> None:
    url = start_web(project)
    status, _, body = fetch(url + "readyz")
    assert status == 503 and "no litequeue database" in body
    assert fetch(url + "livez")[0] == 200


def test_serve_web_tells_systemd_it_is_ready_and_feeds_the_watchdog(project: Project,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from tests.conftest import wait_for

    sock_path = project.root / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.2)
    messages: list[str] = []

    def received(prefix: str) -> bool:
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            pass
        return any(m.startswith(prefix) for m in messages)

    monkeypatch.setenv("NOTIFY_SOCKET", str(sock_path))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # a ping every 0.2 s
    url = start_web(project)
    try:
        wait_for(lambda: received("READY=1"), 20, what="READY=1 from serve-web")
        assert any(f"STATUS=serving {url}" in m for m in messages)
        wait_for(lambda: received("WATCHDOG=1"), 20, what="a watchdog ping from serve-web")
        web = project.procs[-1]
        web.terminate()
        assert web.wait(20) == 0
        wait_for(lambda: received("STOPPING=1"), 10, what="STOPPING=1 on SIGTERM")
    finally:
        sock.close()
