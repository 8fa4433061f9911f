"""The page's actions: retry, cancel and discard one job, the selected jobs or all jobs
matching a filter; pause, resume and purge a queue; reset a breaker; retry a batch's failed
members; Quiet and Stop a consumer; pause, resume and run a schedule. POST forms only.

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

from . import data, format

ACTOR = "web"
BATCH = 500
BULK = ("retry", "cancel", "discard")


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
        flash(f"Retried {format.plural(len(ids), 'failed job')} with their original arguments.", "ok")
        query = {k: v for k, v in (("queue", f["queue"]), ("task", f["task"]), ("tag", f["tag"])) if v}
        return redirect(url_for(".jobs") + ("?" + urlencode(query) if query else ""), 303)

    @app.post("/jobs/<job_id>/discard")
    def discard(job_id: str) -> Any:
        with store() as s:
            what = actions.discard_jobs(s, [job_id], actor=ACTOR)[job_id]
        if what != "discarded":
            raise data.BadRequest(f"job {job_id}: {what}")
        flash(f"Job {job_id} discarded (deleted from the ledger).", "ok")
        return redirect(_back(url_for(".jobs", status="failed")), 303)

    @app.post("/jobs/bulk")
    def bulk() -> Any:
        """Retry, cancel or discard the selected jobs (``ids``), or with ``all=1`` every job
        matching the filters sent along."""
        what = request.form.get("action", "")
        if what not in BULK:
            raise data.BadRequest(f"action must be one of {', '.join(BULK)}, not {what!r}")
        f = data.parse_filters({**request.form.to_dict(), "after": ""})
        with store() as s:
            if request.form.get("all") == "1":
                ids = queries.matching_ids(s.database, status=f["status"], queue=f["queue"], task=f["task"],
                                           search=f["q"], tag=f["tag"], retried=data.retried_flag(f))
            else:
                ids = list(dict.fromkeys(request.form.getlist("ids")))
            if not ids:
                raise data.BadRequest("no job selected: tick the jobs first, or choose all matching")
            done = 0
            for i in range(0, len(ids), BATCH):
                chunk = ids[i:i + BATCH]
                if what == "retry":
                    eligible = queries.final_ids(s.database, chunk)
                    done += len(actions.retry_jobs(s, eligible, actor=ACTOR, hooks=plugins.retry_hooks()))
                elif what == "cancel":
                    done += sum(1 for v in actions.cancel_jobs(s, chunk, actor=ACTOR).values()
                                if v.startswith("cancel"))
                else:
                    done += sum(1 for v in actions.discard_jobs(s, chunk, actor=ACTOR).values() if v == "discarded")
        verb = {"retry": "Retried", "cancel": "Cancelled", "discard": "Discarded"}[what]
        skipped = len(ids) - done
        why = {"retry": "not finished", "cancel": "already ended", "discard": "not failed, cancelled or expired"}[what]
        flash(f"{verb} {format.plural(done, 'job')}"
              + (f"; {format.plural(skipped, 'job')} left alone ({why})" if skipped else "") + ".", "ok")
        return redirect(_back(url_for(".jobs", **data.query_args(f))), 303)

    @app.post("/queues/purge")
    def purge() -> Any:
        name = queue_name()
        def purge_one(s: LiteStorage) -> str:
            dropped = actions.purge_queues(s, [name], actor=ACTOR)[name]
            return f"Queue {name}: {format.plural(dropped, 'queued job')} dropped (cancelled in the ledger)."
        return run(purge_one, url_for(".queue", name=name))

    @app.post("/breakers/reset")
    def reset_breaker() -> Any:
        task = request.form.get("task", "").strip()
        if not task:
            raise data.BadRequest("the form must name the breaker's task")
        return run(lambda s: f"Breaker of {task} " + ("closed: its held jobs run now." if actions.reset_breaker(
            s, task, actor=ACTOR) else "not found."), url_for(".overview"))

    @app.post("/batches/<batch_id>/retry-failed")
    def retry_batch_failed(batch_id: str) -> Any:
        with store() as s:
            ids = [j for j in queries.batch_failed_ids(s.database, batch_id)]
            mapping = actions.retry_jobs(s, ids, actor=ACTOR, hooks=plugins.retry_hooks()) if ids else {}
        flash(f"Retried {format.plural(len(mapping), 'failed member')} of the batch.", "ok")
        return redirect(url_for(".batch", batch_id=batch_id), 303)

    @app.post("/consumers/<consumer_id>/<what>")
    def ask_consumer(consumer_id: str, what: str) -> Any:
        if what not in ("quiet", "stop"):
            raise data.BadRequest(f"a consumer can be asked to quiet or stop, not {what!r}")
        with store() as s:
            asked = actions.ask_consumers(s, [consumer_id], what, actor=ACTOR)
        if asked:
            flash(f"Consumer {consumer_id} asked to {what}: " + (
                "it finishes its running jobs and takes no new ones." if what == "quiet"
                else "it finishes its running jobs and exits, as on SIGTERM.") + " It obeys within a second.", "ok")
        else:
            flash(f"Consumer {consumer_id} is not running, or was asked that already.", "error")
        return redirect(url_for(".consumers"), 303)

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
