"""Pages and their JSON twins (every page reads through the read-only connection)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request, url_for

from litequeue.ledger import metrics, queries

from . import data
from .periodic import NextRuns
from .settings import WebSettings


def register(app: Blueprint, settings: WebSettings, dbs: data.Databases, render: Callable[..., str]) -> None:
    next_runs = NextRuns(settings.app) if settings.app is not None else None
    histograms = metrics.HistogramCache()

    def render_page(template: str, json_data: dict[str, Any], **extra: Any) -> Any:
        return render(template, data=json_data, **extra)

    @app.get("/")
    def overview() -> Any:
        return render_page("overview.html", data.overview(dbs.reader()), page="overview")

    @app.get("/api/overview")
    def api_overview() -> Any:
        return jsonify(data.overview(dbs.reader()))

    @app.get("/jobs")
    def jobs() -> Any:
        db = dbs.reader()
        listing = data.job_list(db, request.args.to_dict(), settings.page_size)
        return render_page("jobs.html", listing, facets={**queries.job_facets(db), "tags": queries.tag_facets(db)},
                           statuses=data.STATUSES, page="jobs")

    @app.get("/api/jobs")
    def api_jobs() -> Any:
        listing = data.job_list(dbs.reader(), request.args.to_dict(), settings.page_size)
        if listing["next_after"] is not None:
            args = {k: v for k, v in request.args.items() if v and k != "after"}
            listing["next"] = url_for(".api_jobs", **args, after=listing["next_after"])
        return jsonify(listing)

    def one_job(job_id: str) -> dict[str, Any]:
        job = queries.get_job(dbs.reader(), job_id)
        if job is None:
            abort(404, f"no job {job_id!r} in the ledger (it may have been pruned)")
        job["events"] = queries.recent_events(dbs.reader(), 50, job_id=job_id)
        batch = queries.batch_of_job(dbs.reader(), job_id)
        job["batch"] = {"id": batch[0], "name": batch[1]} if batch else None
        return job

    @app.get("/jobs/<job_id>")
    def job(job_id: str) -> Any:
        return render_page("job.html", one_job(job_id), page="jobs")

    @app.get("/api/jobs/<job_id>")
    def api_job(job_id: str) -> Any:
        return jsonify(one_job(job_id))

    @app.get("/jobs/retry-failed")
    def confirm_retry_failed() -> Any:
        if settings.read_only:
            abort(403, "this status page is read-only (started with --read-only)")
        f = data.parse_filters({**request.args.to_dict(), "status": "failed", "after": ""})
        count = queries.count_matching(dbs.reader(), status="failed", queue=f["queue"], task=f["task"],
                                       search=f["q"], tag=f["tag"])
        return render_page("confirm_retry.html", {"filters": f, "count": count}, page="jobs")

    @app.get("/periodic")
    def periodic() -> Any:
        return render_page("periodic.html", data.periodic(dbs.reader(), next_runs), page="periodic")

    @app.get("/api/periodic")
    def api_periodic() -> Any:
        return jsonify(data.periodic(dbs.reader(), next_runs))

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.render(dbs.reader(), cache=histograms), content_type=metrics.CONTENT_TYPE)

    @app.get("/livez")
    def livez() -> Response:
        return Response("ok\n", mimetype="text/plain")

    @app.get("/readyz")
    def readyz() -> Response:
        try:
            queries.ping(dbs.reader())
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with its reason
            dbs.forget_reader()
            return Response(f"not ready: {exc}\n", 503, mimetype="text/plain")
        return Response("ready\n", mimetype="text/plain")
