"""Every page and its JSON twin, on a ledger a real consumer filled."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from huey import crontab

from litequeue.ops.loader import load_app
from litequeue_web.periodic import next_run
from tests.web.conftest import MakeApp, Seeded


def test_overview_page_shows_queues_consumers_chart_and_inbox(client: FlaskClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    for text in ("Queues", "mail", "later", "Last hour", "<svg", "Consumers alive", "scans", "Latest actions"):
        assert text in html
    assert 'data-live="overview"' in html and 'data-api="/api/overview"' in html


def test_api_overview_counts(client: FlaskClient, seeded: Seeded) -> None:
    data = client.get("/api/overview").get_json()
    assert set(data) == {"now", "totals", "processed", "day_start", "queues", "consumers", "activity", "inbox",
                         "events", "limits", "breakers", "rate_limited"}
    assert data["limits"] == data["breakers"] == data["rate_limited"] == []  # none declared
    assert data["queues"]["mail"]["failed"] == 2
    assert data["queues"]["later"]["scheduled"] == 1
    assert data["queues"]["default"]["queued"] == 0  # every queue the ledger knows is listed
    assert len(data["activity"]) == 60
    assert sum(a["failed"] for a in data["activity"]) == 2
    assert sum(a["succeeded"] for a in data["activity"]) >= 4
    assert data["inbox"] == [{"inbox": "scans", "state": "done", "count": 1}]
    assert data["consumers"] == []  # the burst consumer has stopped


def test_job_list_page_and_filters(client: FlaskClient, seeded: Seeded) -> None:
    html = client.get("/jobs?status=failed").get_data(as_text=True)
    assert seeded.ids["boom2"][-8:] in html and seeded.ids["ok"][-8:] not in html
    assert "Retry all failed jobs matching this filter" in html
    html = client.get("/jobs?queue=later").get_data(as_text=True)
    assert seeded.ids["later"][-8:] in html and seeded.ids["boom2"][-8:] not in html


@pytest.mark.parametrize(("params", "roles"), [
    ({"status": "failed"}, {"script", "boom2"}),
    ({"queue": "later"}, {"later"}),
    ({"task": "boom"}, {"script", "boom2"}),
    ({"q": "order-2"}, {"boom2"}),  # argument text
    ({"q": "bad order"}, {"boom2"}),  # error text
    ({"status": "failed", "q": "script"}, {"script"}),
])
def test_api_jobs_filters(client: FlaskClient, seeded: Seeded, params: dict[str, str], roles: set[str]) -> None:
    data = client.get("/api/jobs", query_string=params).get_json()
    assert {j["id"] for j in data["jobs"]} == {seeded.ids[r] for r in roles}
    assert data["next_after"] is None


def test_api_jobs_search_by_id(client: FlaskClient, seeded: Seeded) -> None:
    data = client.get("/api/jobs", query_string={"q": seeded.ids["later"]}).get_json()
    assert [j["id"] for j in data["jobs"]] == [seeded.ids["later"]]


def test_api_jobs_keyset_pages_cover_every_job_once(make_app: MakeApp) -> None:
    client = make_app(page_size=2).test_client()
    everything = make_app(page_size=1000).test_client().get("/api/jobs").get_json()["jobs"]
    assert len(everything) >= 8
    seen: list[str] = []
    url: str | None = "/api/jobs"
    while url:
        page = client.get(url).get_json()
        assert len(page["jobs"]) <= 2
        seen += [j["id"] for j in page["jobs"]]
        url = page.get("next")
        if url:
            assert f"after={page['next_after']}" in url
    assert seen == [j["id"] for j in everything]
    seqs = [j["seq"] for j in everything]
    assert seqs == sorted(seqs, reverse=True)


def test_job_list_deep_page_links(make_app: MakeApp) -> None:
    client = make_app(page_size=3).test_client()
    first = client.get("/api/jobs").get_json()
    html = client.get(f"/jobs?after={first['next_after']}").get_data(as_text=True)
    assert "← Newest" in html
    assert 'data-live="jobs"' not in html  # deep pages hold still; only the first page refreshes
    assert first["jobs"][0]["id"][-8:] not in html


@pytest.mark.parametrize("query", ["status=bogus", "after=abc"])
def test_api_jobs_bad_parameters(client: FlaskClient, query: str) -> None:
    r = client.get(f"/api/jobs?{query}")
    assert r.status_code == 400
    assert "must be" in r.get_json()["error"]
    assert client.get(f"/jobs?{query}").status_code == 400


def test_job_page_shows_everything_the_ledger_knows(client: FlaskClient, seeded: Seeded) -> None:
    html = client.get(f"/jobs/{seeded.ids['boom2']}").get_data(as_text=True)
    assert "ValueError: bad order-2" in html
    assert "Traceback (most recent call last)" in html and 'raise ValueError(f&#34;bad {x}&#34;)' in html
    data = client.get(f"/api/jobs/{seeded.ids['boom2']}").get_json()
    assert data["status"] == "failed" and data["args"] == ["order-2"]
    assert data["attempt_list"][0]["outcome"] == "failed"
    assert data["attempt_list"][0]["worker"] in html
    assert "Traceback" in data["traceback"]


def test_job_page_redacts_secrets_and_shows_result_and_file(client: FlaskClient, seeded: Seeded) -> None:
    data = client.get(f"/api/jobs/{seeded.ids['secret']}").get_json()
    assert data["kwargs"] == {"api_key": "***", "user": "ann"}
    html = client.get(f"/jobs/{seeded.ids['secret']}").get_data(as_text=True)
    assert "sk-live" not in html and "***" in html
    assert "&#34;got&#34;: 2" in html and "&lt;b&gt;bold&lt;/b&gt;" in html  # result preview, escaped
    html = client.get(f"/jobs/{seeded.ids['ok']}").get_data(as_text=True)
    assert "invoice-7.pdf" in html and "/srv/scans/done/invoice-7.pdf" in html


def test_job_page_links_pipeline_parent_and_child(client: FlaskClient, seeded: Seeded) -> None:
    parent, child = seeded.ids["parent"], seeded.ids["child"]
    assert client.get(f"/api/jobs/{parent}").get_json()["children"] == [child]
    assert client.get(f"/api/jobs/{child}").get_json()["parent_id"] == parent
    assert f'href="/jobs/{child}"' in client.get(f"/jobs/{parent}").get_data(as_text=True)
    assert f'href="/jobs/{parent}"' in client.get(f"/jobs/{child}").get_data(as_text=True)


def test_unknown_job_is_404(client: FlaskClient) -> None:
    assert client.get("/jobs/nope").status_code == 404
    r = client.get("/api/jobs/nope")
    assert r.status_code == 404 and "no job 'nope'" in r.get_json()["error"]


def test_script_argument_is_shown_as_text(client: FlaskClient, seeded: Seeded) -> None:
    for path in (f"/jobs/{seeded.ids['script']}", "/jobs?status=failed", "/jobs?q=script"):
        html = client.get(path).get_data(as_text=True)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
        assert "<script>alert(1)" not in html, path
    data = client.get(f"/api/jobs/{seeded.ids['script']}").get_json()
    assert data["args"] == ["<script>alert(1)</script>"]
    r = client.get(f"/api/jobs/{seeded.ids['script']}")
    assert r.mimetype == "application/json" and r.headers["X-Content-Type-Options"] == "nosniff"


def test_consumers_page_and_api(client: FlaskClient) -> None:
    data = client.get("/api/consumers").get_json()
    assert len(data["consumers"]) == 1 and data["consumers"][0]["status"] == "stopped"
    html = client.get("/consumers").get_data(as_text=True)
    assert data["consumers"][0]["id"] in html and "stopped" in html


def test_periodic_page_without_app_shows_history(client: FlaskClient) -> None:
    data = client.get("/api/periodic").get_json()
    assert data["knows_schedule"] is False
    assert [t["task"] for t in data["tasks"]] == ["tasks.tick"]
    assert data["tasks"][0]["last_run"]["status"] == "succeeded"
    assert data["runs"][0]["task"] == "tasks.tick"
    html = client.get("/periodic").get_data(as_text=True)
    assert "tasks.tick" in html and "serve-web APP" in html


def test_periodic_page_with_app_shows_next_runs(make_app: MakeApp, seeded: Seeded,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(seeded.db.parent)
    monkeypatch.setenv("LITEQUEUE_DB", str(seeded.db))
    monkeypatch.syspath_prepend(str(seeded.db.parent))
    app = load_app("tasks")
    client = make_app(app=app).test_client()
    data = client.get("/api/periodic").get_json()
    tasks = {t["task"]: t for t in data["tasks"]}
    assert set(tasks) == {"tasks.tick", "tasks.nightly"}
    nightly = dt.datetime.strptime(tasks["tasks.nightly"]["next_run"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert (nightly.hour, nightly.minute) == (3, 0)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert dt.timedelta(0) < nightly - now <= dt.timedelta(days=1)
    assert tasks["tasks.nightly"]["last_run"] is None and tasks["tasks.tick"]["last_run"] is not None
    html = client.get("/periodic").get_data(as_text=True)
    assert "03:00:00 UTC" in html and "never" in html


def test_next_run_steps_forward_with_the_schedule() -> None:
    class Quarter:
        def validate_datetime(self, moment: dt.datetime) -> bool:
            return bool(crontab(minute="*/15")(moment))

    class Never:
        def validate_datetime(self, moment: dt.datetime) -> bool:
            return False

    now = dt.datetime(2026, 3, 1, 10, 7, 30, tzinfo=dt.UTC).timestamp()
    assert next_run(Quarter, now) == dt.datetime(2026, 3, 1, 10, 15, tzinfo=dt.UTC).timestamp()  # type: ignore[arg-type]
    on_the_dot = dt.datetime(2026, 3, 1, 10, 15, 0, tzinfo=dt.UTC).timestamp()
    assert next_run(Quarter, on_the_dot) == dt.datetime(2026, 3, 1, 10, 30, tzinfo=dt.UTC).timestamp()  # type: ignore[arg-type]
    assert next_run(Never, now) is None  # type: ignore[arg-type]


def test_confirm_page_counts_failed_jobs_matching_the_filter(client: FlaskClient) -> None:
    html = client.get("/jobs/retry-failed?queue=mail").get_data(as_text=True)
    assert '<b id="retry-count">2</b>' in html and "Retry 2 jobs" in html
    html = client.get("/jobs/retry-failed?q=order-2").get_data(as_text=True)
    assert '<b id="retry-count">1</b>' in html and "Retry 1 job<" in html
    html = client.get("/jobs/retry-failed?queue=later").get_data(as_text=True)
    assert '<b id="retry-count">0</b>' in html and "Retry 0" not in html


def test_live_endpoints(client: FlaskClient) -> None:
    assert client.get("/livez").get_data(as_text=True) == "ok\n"
    assert client.get("/readyz").get_data(as_text=True) == "ready\n"


def test_readyz_reports_a_missing_database_then_recovers(make_app: MakeApp, tmp_path: Path, seeded: Seeded) -> None:
    missing = tmp_path / "later.db"
    client = make_app(db=str(missing)).test_client()
    r = client.get("/readyz")
    assert r.status_code == 503 and "no litequeue database at" in r.get_data(as_text=True)
    assert client.get("/livez").status_code == 200
    page = client.get("/")
    assert page.status_code == 503 and "no litequeue database" in page.get_data(as_text=True)
    assert client.get("/api/overview").status_code == 503
    import sqlite3

    src, dst = sqlite3.connect(seeded.db), sqlite3.connect(missing)
    src.backup(dst)
    src.close()
    dst.close()
    assert client.get("/readyz").status_code == 200
    assert client.get("/api/overview").status_code == 200


def test_json_twins_are_json(client: FlaskClient, seeded: Seeded) -> None:
    for path in ("/api/overview", "/api/jobs", f"/api/jobs/{seeded.ids['ok']}", "/api/periodic", "/api/consumers"):
        r = client.get(path)
        assert r.status_code == 200 and r.mimetype == "application/json", path
        json.loads(r.get_data(as_text=True))


def test_debug_mode_is_never_on(make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_DEBUG", "1")
    app = make_app()
    assert app.debug is False
    r = app.test_client().get("/api/jobs?after=x")
    assert "Traceback" not in r.get_data(as_text=True)
