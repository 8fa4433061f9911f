"""Actions (retry, retry all failed, cancel, pause, resume): what they write, and the POSTs
the page refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.web.conftest import ORIGIN, Seeded, query, token_from


def events(db: Path) -> list[tuple[str, str | None, str | None, str]]:
    return query(db, "SELECT action, job_id, queue, actor FROM lq_event ORDER BY id")


def test_retry_a_failed_job(client: FlaskClient, seeded: Seeded, web_db: Path) -> None:
    old = seeded.ids["boom2"]
    token = token_from(client, f"/jobs/{old}")
    r = client.post(f"/jobs/{old}/retry", data={"csrf_token": token}, headers=ORIGIN)
    assert r.status_code == 303
    new = r.headers["Location"].rsplit("/", 1)[-1]
    assert new != old
    assert query(web_db, "SELECT status, retried_from, args, task, queue FROM lq_job WHERE id = ?", (new,)) == \
        [("queued", old, '["order-2"]', "boom", "mail")]
    assert events(web_db) == [("retry", old, "mail", "web")]
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "retried as" in page and f'href="/jobs/{old}"' in page
    assert f'href="/jobs/{new}"' in client.get(f"/jobs/{old}").get_data(as_text=True)


def test_retry_of_a_job_that_is_not_finished_is_refused(client: FlaskClient, seeded: Seeded, web_db: Path) -> None:
    token = token_from(client)
    r = client.post(f"/jobs/{seeded.ids['later']}/retry", data={"csrf_token": token}, headers=ORIGIN)
    assert r.status_code == 409
    assert "only finished jobs" in r.get_data(as_text=True)
    assert events(web_db) == []


def test_retry_all_failed_matching_the_filter(client: FlaskClient, seeded: Seeded, web_db: Path) -> None:
    token = token_from(client, "/jobs/retry-failed?queue=mail")
    r = client.post("/jobs/retry-failed", data={"csrf_token": token, "queue": "mail", "task": "", "q": ""},
                    headers=ORIGIN)
    assert r.status_code == 303 and r.headers["Location"] == "/jobs?queue=mail"
    retried = query(web_db, "SELECT retried_from FROM lq_job WHERE retried_from IS NOT NULL")
    assert {r[0] for r in retried} == {seeded.ids["script"], seeded.ids["boom2"]}
    assert [e[0] for e in events(web_db)] == ["retry", "retry"]
    assert "Retried 2 failed jobs" in client.get(r.headers["Location"]).get_data(as_text=True)


def test_retry_all_failed_respects_the_search(client: FlaskClient, seeded: Seeded, web_db: Path) -> None:
    token = token_from(client)
    client.post("/jobs/retry-failed", data={"csrf_token": token, "q": "order-2"}, headers=ORIGIN)
    assert query(web_db, "SELECT retried_from FROM lq_job WHERE retried_from IS NOT NULL") == \
        [(seeded.ids["boom2"],)]


def test_cancel_a_scheduled_job(client: FlaskClient, seeded: Seeded, web_db: Path) -> None:
    job = seeded.ids["later"]
    token = token_from(client, f"/jobs/{job}")
    r = client.post(f"/jobs/{job}/cancel", data={"csrf_token": token}, headers=ORIGIN)
    assert r.status_code == 303 and r.headers["Location"] == f"/jobs/{job}"
    assert query(web_db, "SELECT status FROM lq_job WHERE id = ?", (job,)) == [("cancelled",)]
    assert query(web_db, "SELECT COUNT(*) FROM lq_schedule WHERE job_id = ?", (job,)) == [(0,)]
    assert events(web_db) == [("cancel", job, "later", "web")]
    assert "cancelled" in client.get(r.headers["Location"]).get_data(as_text=True)


def test_pause_and_resume_a_queue(client: FlaskClient, web_db: Path) -> None:
    token = token_from(client)
    r = client.post("/queues/pause", data={"csrf_token": token, "queue": "mail"}, headers=ORIGIN)
    assert r.status_code == 303 and r.headers["Location"] == "/"
    assert client.get("/api/overview").get_json()["queues"]["mail"]["paused"] is True
    html = client.get("/").get_data(as_text=True)
    assert "Queue mail paused." in html and "Resume" in html
    client.post("/queues/resume", data={"csrf_token": token, "queue": "mail"}, headers=ORIGIN)
    assert client.get("/api/overview").get_json()["queues"]["mail"]["paused"] is False
    assert [(e[0], e[2], e[3]) for e in events(web_db)] == [("pause", "mail", "web"), ("resume", "mail", "web")]


def test_pause_without_a_queue_is_a_bad_request(client: FlaskClient) -> None:
    r = client.post("/queues/pause", data={"csrf_token": token_from(client)}, headers=ORIGIN)
    assert r.status_code == 400


def test_same_origin_referer_is_accepted_without_origin(client: FlaskClient, web_db: Path) -> None:
    token = token_from(client)
    r = client.post("/queues/pause", data={"csrf_token": token, "queue": "mail"},
                    headers={"Referer": "http://localhost/"})
    assert r.status_code == 303


def test_redirect_target_stays_on_this_site(client: FlaskClient) -> None:
    token = token_from(client)
    r = client.post("/queues/pause", data={"csrf_token": token, "queue": "mail", "next": "//evil.example/x"},
                    headers=ORIGIN)
    assert r.headers["Location"] == "/"
    r = client.post("/queues/resume", data={"csrf_token": token, "queue": "mail", "next": "/jobs?queue=mail"},
                    headers=ORIGIN)
    assert r.headers["Location"] == "/jobs?queue=mail"


@pytest.mark.parametrize(("headers", "with_token", "reason"), [
    (ORIGIN, False, "CSRF token"),
    ({"Origin": "http://evil.example"}, True, "cross-origin"),
    ({"Origin": "http://localhost:9999"}, True, "cross-origin"),
    ({"Referer": "http://evil.example/page"}, True, "cross-origin"),
    ({}, True, "without Origin or Referer"),
    ({"Origin": "null"}, True, "without Origin or Referer"),
])
def test_forged_posts_are_refused(client: FlaskClient, seeded: Seeded, web_db: Path,
                                  headers: dict[str, str], with_token: bool, reason: str) -> None:
    token = token_from(client)
    data = {"csrf_token": token} if with_token else {}
    for path, extra in ((f"/jobs/{seeded.ids['boom2']}/retry", {}), (f"/jobs/{seeded.ids['later']}/cancel", {}),
                        ("/jobs/retry-failed", {}), ("/queues/pause", {"queue": "mail"})):
        r = client.post(path, data={**data, **extra}, headers=headers)
        assert r.status_code == 403, path
        assert reason in r.get_data(as_text=True), path
    assert events(web_db) == []
    assert query(web_db, "SELECT COUNT(*) FROM lq_job WHERE retried_from IS NOT NULL") == [(0,)]


def test_a_token_from_another_session_is_refused(make_app, seeded: Seeded, web_db: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    mine, theirs = app.test_client(), app.test_client()
    token = token_from(theirs)
    token_from(mine)
    r = mine.post(f"/jobs/{seeded.ids['boom2']}/retry", data={"csrf_token": token}, headers=ORIGIN)
    assert r.status_code == 403 and "CSRF" in r.get_data(as_text=True)
    assert events(web_db) == []


def test_get_never_acts(client: FlaskClient, seeded: Seeded, web_db: Path) -> None:
    assert client.get(f"/jobs/{seeded.ids['boom2']}/retry").status_code == 405
    assert client.get("/queues/pause?queue=mail").status_code == 405
    client.get("/jobs/retry-failed")  # the confirmation page only counts
    assert events(web_db) == []
