"""The page's actions (retry, retry all failed, cancel, pause, resume; pause, resume and
run a schedule): POST forms only.

The guards in security.py have already checked auth, read-only mode, origin and CSRF token
when these run. Each action goes through litequeue.jobs.actions, which records it in lq_event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, flash, redirect, request, url_for

from litequeue import schedules
from litequeue.app import LiteQueue
from litequeue.engine.storage import LiteStorage
from litequeue.jobs import actions
from litequeue.ledger import queries
from litequeue.ops import plugins

from . import data

ACTOR = "web"
BATCH = 500


def _back(default: str) -> str:
    target = request.form.get("next", "")
    # Only paths on this site, so a form cannot be turned into an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else default


def register(app: Blueprint, dbs: data.Databases, user_app: LiteQueue | None = None) -> None:
    @contextmanager
    def store() -> Iterator[LiteStorage]:
        s = dbs.store()
        try:
            yield s
        finally:
            s.database.close()

    def run(action: Callable[[LiteStorage], str], default: str) -> Any:
        with store() as s:
            flash(action(s), "ok")
        return redirect(_back(default), 303)

    @app.post("/jobs/<job_id>/retry")
    def retry(job_id: str) -> Any:
        with store() as s:
            new_id = actions.retry_jobs(s, [job_id], actor=ACTOR, hooks=plugins.retry_hooks())[job_id]
        flash(f"Job {job_id} retried as {new_id} with its original arguments.", "ok")
        return redirect(url_for(".job", job_id=new_id), 303)

    @app.post("/jobs/<job_id>/cancel")
    def cancel(job_id: str) -> Any:
        return run(lambda s: f"Job {job_id}: {actions.cancel_jobs(s, [job_id], actor=ACTOR)[job_id]}.",
                   url_for(".job", job_id=job_id))

    @app.post("/jobs/retry-failed")
    def retry_failed() -> Any:
        f = data.parse_filters({**request.form.to_dict(), "status": "failed", "after": ""})
        with store() as s:
            ids = queries.failed_job_ids(s.database, queue=f["queue"], task=f["task"], search=f["q"], tag=f["tag"])
            for i in range(0, len(ids), BATCH):
                actions.retry_jobs(s, ids[i:i + BATCH], actor=ACTOR, hooks=plugins.retry_hooks())
        flash(f"Retried {len(ids)} failed job(s) with their original arguments.", "ok")
        query = {k: v for k, v in (("queue", f["queue"]), ("task", f["task"]), ("tag", f["tag"])) if v}
        return redirect(url_for(".jobs") + ("?" + urlencode(query) if query else ""), 303)

    def queue_name() -> str:
        name = request.form.get("queue", "").strip()
        if not name:
            raise data.BadRequest("the form must name a queue")
        return name

    @app.post("/queues/pause")
    def pause() -> Any:
        name = queue_name()
        return run(lambda s: (actions.pause_queues(s, [name], actor=ACTOR), f"Queue {name} paused.")[1],
                   url_for(".overview"))

    @app.post("/queues/resume")
    def resume() -> Any:
        name = queue_name()
        return run(lambda s: (actions.resume_queues(s, [name], actor=ACTOR), f"Queue {name} resumed.")[1],
                   url_for(".overview"))

    def schedule_name() -> str:
        name = request.form.get("name", "").strip()
        if not name:
            raise data.BadRequest("the form must name a schedule")
        return name

    @app.post("/periodic/pause")
    def pause_schedule() -> Any:
        name = schedule_name()
        return run(lambda s: f"Schedule {name} " + (
            "paused." if schedules.set_enabled(s, name, False, actor=ACTOR) else "was paused already."),
            url_for(".periodic"))

    @app.post("/periodic/resume")
    def resume_schedule() -> Any:
        name = schedule_name()
        return run(lambda s: f"Schedule {name} " + (
            "resumed." if schedules.set_enabled(s, name, True, actor=ACTOR) else "was not paused."),
            url_for(".periodic"))

    @app.post("/periodic/run")
    def run_schedule() -> Any:
        name = schedule_name()
        if user_app is None:
            raise data.BadRequest("Run now needs the app: start the page with `litequeue serve-web APP`")
        lq = user_app
        return run(lambda s: f"Schedule {name} run now as job {schedules.run_now(lq, name, s, actor=ACTOR)}.",
                   url_for(".periodic"))
