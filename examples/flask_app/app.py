"""A tiny Flask app: a POST enqueues a job, a GET shows its status from litequeue's ledger.

    flask --app app run
"""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, jsonify, redirect, request, url_for
from tasks import build_report, queue

from litequeue.ledger import queries

app = Flask(__name__)

PAGE = """<!doctype html><title>reports</title>
<form method="post" action="/reports">customer <input name="customer" value="acme">
rows <input name="rows" value="1000" size="6"> <button>build report</button></form>
<ul>{items}</ul>"""


@app.get("/")
def index() -> str:
    jobs = queries.list_jobs(queue.storage.database, task="build_report", limit=20)
    items = "".join(f'<li><a href="/reports/{j["id"]}">{j["id"][:8]}</a> {j["status"]}</li>' for j in jobs)
    return PAGE.format(items=items)


@app.post("/reports")
def create_report() -> Any:
    """Enqueue (one SQLite transaction, a few milliseconds) and answer at once."""
    data = request.get_json(silent=True) or request.form
    try:
        rows = int(data.get("rows", 1000))
    except ValueError:
        abort(400, "rows must be a whole number")
    result = build_report(str(data.get("customer", "acme")), rows)
    status_url = url_for("report_status", job_id=result.id)
    if request.is_json:
        return jsonify(id=result.id, status_url=status_url), 202
    return redirect(status_url, code=303)


@app.get("/reports/<job_id>")
def report_status(job_id: str) -> Any:
    """What the ledger knows: status, progress, result or error. Never blocks on the job."""
    job = queries.get_job(queue.storage.database, job_id)
    if job is None:
        abort(404)
    return jsonify({key: job.get(key) for key in
                    ("id", "status", "progress", "result", "error", "enqueued_at", "finished_at")})
