"""Issue 13, rate limits made visible: a job held back by Huey's ``rate_limit`` goes back on
the schedule without a retry or an attempt, and ``status``, ``jobs show`` and the page say
it is rate limited instead of showing a silent retry. SQLite and PostgreSQL."""

from __future__ import annotations

import threading

from litequeue.ledger import queries
from tests.conftest import running_consumer, wait_for


def test_rate_limited_jobs_show_as_held_not_as_retries(make_app):
    app = make_app()
    gate = threading.Event()

    @app.task(retry_delay=0.3)
    def limited(n):
        with app.rate_limit("api", 1, 3600):  # one call an hour: the rest wait
            gate.set()

    rs = [limited(i) for i in range(3)]
    db = app.storage.database
    with running_consumer(app, workers=1):
        gate.wait(20)
        held = wait_for(lambda: [j for r in rs if (j := queries.get_job(db, r.id))["status"] == "scheduled"
                                 and j["held"]], 20, what="a rate-limited job")
        job = held[0]
        assert job["held"].startswith("rate limited on 'api' (Huey rate_limit)")
        assert job["attempts"] == 0 and job["attempt_list"] == []  # no attempt, no retry used
        assert job["traceback"] is None
        rows = queries.rate_limited(db)
        assert rows and rows[0]["task"] == "limited" and rows[0]["jobs"] >= 1
    # The one that got through succeeded; the others are still held, not failed.
    statuses = sorted(queries.get_job(db, r.id)["status"] for r in rs)
    assert statuses.count("succeeded") == 1 and "failed" not in statuses
