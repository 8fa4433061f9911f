"""The status page filters jobs by tag and shows a job's tags and dependencies (and the
JSON twins say the same), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from litequeue import LiteQueue
from litequeue_web import WebSettings, create_app


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    db = request.getfixturevalue("pg_url") if request.param == "postgres" else str(tmp_path / "lq.db")
    app = LiteQueue("shop", db=db)

    @app.task()
    def ocr(page):
        return page

    acme = [app.enqueue(ocr.s(p), tags=["site:acme"]).id for p in range(3)]
    beta = app.enqueue(ocr.s(9), tags=["site:beta"]).id
    after = app.enqueue(ocr.s(10), depends_on=acme[:2], tags=["site:acme", "step:assemble"]).id
    app.storage.close()
    yield db, {"acme": acme, "beta": beta, "after": after}


def test_job_list_filters_by_tag_and_shows_tags(ledger: Any) -> None:
    db, ids = ledger
    client = create_app(WebSettings(db=db)).test_client()
    listing = client.get("/api/jobs?tag=site:acme").get_json()
    assert {j["id"] for j in listing["jobs"]} == {*ids["acme"], ids["after"]}
    assert listing["filters"]["tag"] == "site:acme"
    assert client.get("/api/jobs?tag=site:none").get_json()["jobs"] == []

    html = client.get("/jobs?tag=site:beta").get_data(as_text=True)
    assert ids["beta"][-8:] in html and ids["acme"][0][-8:] not in html
    assert 'value="site:beta"' in html  # the filter keeps its value
    assert '<option value="site:acme">' in html  # the menu offers the tags the ledger holds
    assert 'class="tag" href="/jobs?tag=site:beta"' in html


def test_job_page_shows_tags_and_dependencies(ledger: Any) -> None:
    db, ids = ledger
    client = create_app(WebSettings(db=db)).test_client()
    job = client.get(f"/api/jobs/{ids['after']}").get_json()
    assert job["status"] == "waiting"
    assert job["tags"] == ["site:acme", "step:assemble"]
    assert job["depends_on"] == [{"id": i, "outcome": None} for i in sorted(ids["acme"][:2])]
    assert client.get(f"/api/jobs/{ids['acme'][0]}").get_json()["dependents"] == [ids["after"]]
    html = client.get(f"/jobs/{ids['after']}").get_data(as_text=True)
    assert 'id="tags"' in html and "step:assemble" in html
    assert 'id="depends-on"' in html and "(pending)" in html
