"""Acting on many jobs (retry, cancel, discard the selected ones or all matching a filter),
discarding one, the Failed count leaving out retried jobs, list totals and the task filter."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient

from tests.web.conftest import ORIGIN, Seeded, query, token_from


def post(client: FlaskClient, path: str, **form: object) -> object:
    token = token_from(client, "/jobs")
    return client.post(path, data={"csrf_token": token, **form}, headers=ORIGIN)


def test_discard_deletes_a_failed_job_and_logs_it(client: FlaskClient, seeded: Seeded, web_db: Path) -> None:
    job = seeded.ids["boom2"]
    r = post(client, f"/jobs/{job}/discard")
    assert r.status_code == 303
    assert query(web_db, "SELECT COUNT(*) FROM lq_job WHERE id = ?", (job,)) == [(0,)]
    assert query(web_db, "SELECT action, job_id, queue, actor FROM lq_event") == [("discard", job, "mail", "web")]
    assert client.get(f"/jobs/{job}").status_code == 404


def test_discard_refuses_a_job_that_has_not_ended(client: FlaskClient, seeded: Seeded, web_db: Path) -> None:
    r = post(client, f"/jobs/{seeded.ids['later']}/discard")
    assert r.status_code == 400
    assert "only failed, cancelled or expired" in r.get_data(as_text=True)
    assert query(web_db, "SELECT status FROM lq_job WHERE id = ?", (seeded.ids["later"],)) == [("scheduled",)]


def test_bulk_retry_of_selected_jobs(client: FlaskClient, seeded: Seeded, web_db: Path) -> None:
    ids = [seeded.ids["script"], seeded.ids["boom2"], seeded.ids["later"]]
    r = post(client, "/jobs/bulk", action="retry", ids=ids, next="/jobs?status=failed")
    assert r.status_code == 303 and r.headers["Location"] == "/jobs?status=failed"
    assert {r[0] for r in query(web_db, "SELECT retried_from FROM lq_job WHERE retried_from IS NOT NULL")} == \
        set(ids[:2])
    flash = client.get("/jobs").get_data(as_text=True)
    assert "Retried 2 jobs; 1 job left alone (not finished)." in flash


def test_bulk_discard_of_all_matching_a_filter(client: FlaskClient, seeded: Seeded, web_db: Path) -> None:
    r = post(client, "/jobs/bulk", action="discard", all="1", status="failed", queue="mail")
    assert r.status_code == 303
    assert query(web_db, "SELECT COUNT(*) FROM lq_job WHERE status = 'failed'") == [(0,)]
    assert [e[0] for e in query(web_db, "SELECT action FROM lq_event")] == ["discard", "discard"]


def test_bulk_cancel_and_bad_action(client: FlaskClient, seeded: Seeded, web_db: Path) -> None:
    r = post(client, "/jobs/bulk", action="cancel", ids=[seeded.ids["later"]])
    assert r.status_code == 303
    assert query(web_db, "SELECT status FROM lq_job WHERE id = ?", (seeded.ids["later"],)) == [("cancelled",)]
    assert post(client, "/jobs/bulk", action="explode", ids=[seeded.ids["later"]]).status_code == 400
    assert post(client, "/jobs/bulk", action="retry").status_code == 400  # nothing selected


def test_failed_count_leaves_out_jobs_retried_since(client: FlaskClient, seeded: Seeded) -> None:
    before = client.get("/api/overview").get_json()["totals"]
    assert before["failed"] == before["failed_open"] == 2
    post(client, f"/jobs/{seeded.ids['boom2']}/retry")
    after = client.get("/api/overview").get_json()
    assert after["totals"]["failed_open"] == 1 + (1 if after["totals"]["failed"] == 3 else 0)
    assert after["queues"]["mail"]["failed_retried"] == 1
    listed = client.get("/api/jobs?status=failed&retried=no").get_json()
    assert seeded.ids["boom2"] not in [j["id"] for j in listed["jobs"]]


def test_list_totals_and_qualified_task_filter(client: FlaskClient, seeded: Seeded) -> None:
    listing = client.get("/api/jobs").get_json()
    n = len(listing["jobs"])  # the seeded jobs, and the periodic tick's runs
    assert listing["total"] == n >= 7 and listing["first"] == 1
    page = client.get("/jobs").get_data(as_text=True)
    assert f"1–{n} of {n}" in page
    bare = client.get("/api/jobs?task=boom").get_json()
    qualified = client.get("/api/jobs?task=tasks.boom").get_json()
    assert [j["id"] for j in qualified["jobs"]] == [j["id"] for j in bare["jobs"]] and bare["total"] == 2


def test_queue_page_and_purge(client: FlaskClient, seeded: Seeded, web_db: Path) -> None:
    data = client.get("/api/queue/mail").get_json()
    assert data["name"] == "mail" and data["counts"]["failed"] == 2 and data["hour"]["failed"] == 2
    assert client.get("/queue/nope").status_code == 404
    r = post(client, "/queues/purge", queue="later")
    assert r.status_code == 303
    assert query(web_db, "SELECT action, queue FROM lq_event") == [("purge", "later")]
