"""A tiny Flask app: a POST enqueues a job, a GET shows its status from litequeue's ledger,
and litequeue's status page is mounted at /queue behind the app's own login.

    flask --app app run
"""

from __future__ import annotations

import hmac
import os
import secrets
from typing import Any

from flask import Flask, abort, jsonify, redirect, request, session, url_for
from tasks import build_report, queue

import litequeue_web
from litequeue.ledger import queries

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_bytes(32),
    LITEQUEUE_DB=os.environ.get("LITEQUEUE_DB", "litequeue.db"),  # the consumer's LITEQUEUE_DB too
    ADMIN_PASSWORD=os.environ.get("ADMIN_PASSWORD", "change me"),
)
queue.init_app(app)  # LITEQUEUE_* from app.config; app.extensions["litequeue"] is the queue

# litequeue's status page under /queue, behind this app's login (its forms keep their CSRF token)
status_page = litequeue_web.blueprint(queue)


@status_page.before_request
def staff_only() -> Any:
    if not session.get("staff"):
        return redirect(url_for("login", next=request.path))
    return None


app.register_blueprint(status_page, url_prefix="/queue")

LOGIN = """<!doctype html><title>log in</title><form method="post">password
<input type="password" name="password" autofocus> <button>log in</button></form>"""


@app.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "POST":
        if hmac.compare_digest(request.form.get("password", ""), app.config["ADMIN_PASSWORD"]):
            session["staff"] = True
            target = request.args.get("next", "")
            return redirect(target if target.startswith("/") and not target.startswith("//") else "/queue/", 303)
        return LOGIN, 403
    return LOGIN

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
