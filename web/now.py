"""The Running page (what runs now: started at, time running, worker, progress), the
Consumers page (busy and idle workers, current jobs, Quiet and Stop) and a page per queue,
each with its JSON twin under ``/api``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import peewee as pw
from flask import Blueprint, abort, jsonify

from litequeue.ledger import queries
from litequeue.store.liveness import consumer_of

from . import data


def running_now(db: pw.Database) -> dict[str, Any]:
    jobs = queries.running_jobs(db)
    return {"now": queries.iso(time.time()), "jobs": jobs, "count": len(jobs)}


def consumer_list(db: pw.Database) -> dict[str, Any]:
    """Every consumer (newest 200) with its running jobs, busy and idle workers."""
    rows = queries.consumers(db)
    by_consumer: dict[str, list[dict[str, Any]]] = {}
    for job in queries.running_jobs(db):
        if job["worker"]:
            by_consumer.setdefault(consumer_of(job["worker"]), []).append(
                {k: job[k] for k in ("id", "task", "queue", "started_at", "running_s", "progress")})
    for c in rows:
        c["jobs"] = by_consumer.get(c["id"], [])
        alive = c["status"] in ("running", "stopping")
        c["busy"] = len(c["jobs"]) if alive else 0
        c["idle"] = max(0, c["concurrency"] - c["busy"]) if alive else 0
        if c["obeyed"] == "stop" or c["status"] == "stopping":
            c["state"] = "stopping"
        elif c["obeyed"] == "quiet":
            c["state"] = "quiet"
        elif c["requested"] and alive:
            c["state"] = f"{c['requested']} asked"
        else:
            c["state"] = c["status"]
    return {"consumers": rows, "alive": sum(1 for c in rows if c["status"] in ("running", "stopping"))}


def queue_page(db: pw.Database, name: str) -> dict[str, Any]:
    """One queue: counts, its last hour, the oldest waiting job, limits, paused or not."""
    if name not in queries.job_facets(db)["queues"]:
        abort(404, f"no queue {name!r} in the ledger")
    summary = data.overview_queues(db).get(name, {})
    limits = [lim for lim in queries.concurrency_limits(db) if lim["scope"] == "queue" and lim["name"] == name]
    return {"name": name, "counts": summary, "hour": queries.queue_hour(db, name),
            "oldest": queries.oldest_job(db, name), "limits": limits,
            "consumers": [c["id"] for c in queries.consumers(db, alive_only=True)
                          if not c["queues"] or name in c["queues"]]}


def register(app: Blueprint, dbs: data.Databases, render: Callable[..., str]) -> None:
    @app.get("/running")
    def running() -> Any:
        return render("running.html", data=running_now(dbs.reader()), page="running")

    @app.get("/api/running")
    def api_running() -> Any:
        return jsonify(running_now(dbs.reader()))

    @app.get("/consumers")
    def consumers() -> Any:
        return render("consumers.html", data=consumer_list(dbs.reader()), page="consumers")

    @app.get("/api/consumers")
    def api_consumers() -> Any:
        return jsonify(consumer_list(dbs.reader()))

    @app.get("/queue/<name>")
    def queue(name: str) -> Any:
        return render("queue.html", data=queue_page(dbs.reader(), name), page="overview")

    @app.get("/api/queue/<name>")
    def api_queue(name: str) -> Any:
        return jsonify(queue_page(dbs.reader(), name))
