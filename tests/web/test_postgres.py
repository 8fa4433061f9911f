"""The status page on PostgreSQL: the same pages, JSON, metrics and actions."""

from __future__ import annotations

import json

from litequeue_web import WebSettings, create_app
from tests.conftest import Project
from tests.web.conftest import ORIGIN, SEED, TASKS, token_from
from tests.web.test_metrics import parse


def test_every_page_and_an_action_on_postgres(project: Project, pg_url: str) -> None:
    project.write("tasks.py", TASKS)
    project.extra_env.update(LITEQUEUE_DB=pg_url)
    ids = json.loads(project.python(SEED).stdout.strip().splitlines()[-1])
    project.cli("run-consumer", "tasks", "--burst", "-w", "2")
    client = create_app(WebSettings(db=pg_url)).test_client()
    for path in ("/", "/jobs", "/jobs?status=failed&q=order", f"/jobs/{ids['boom2']}", "/periodic", "/consumers",
                 "/jobs/retry-failed?queue=mail", "/readyz"):
        assert client.get(path).status_code == 200, path
    overview = client.get("/api/overview").get_json()
    assert overview["queues"]["mail"]["failed"] == 2 and overview["queues"]["later"]["scheduled"] == 1
    assert {j["id"] for j in client.get("/api/jobs?task=boom").get_json()["jobs"]} == {ids["script"], ids["boom2"]}
    assert client.get("/api/periodic").get_json()["tasks"][0]["task"] == "tasks.tick"
    _, samples = parse(client.get("/metrics").get_data(as_text=True))
    counts = {s[1]["queue"]: s[2] for s in samples if s[0] == "litequeue_job_duration_seconds_count"}
    assert counts == {"default": 5, "mail": 2}
    token = token_from(client, f"/jobs/{ids['boom2']}")
    r = client.post(f"/jobs/{ids['boom2']}/retry", data={"csrf_token": token}, headers=ORIGIN)
    assert r.status_code == 303
    new = r.headers["Location"].rsplit("/", 1)[-1]
    assert client.get(f"/api/jobs/{new}").get_json()["retried_from"] == ids["boom2"]
