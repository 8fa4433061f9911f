"""``create_app(settings)``: the Flask app of the status page."""

from __future__ import annotations

import logging
from typing import Any

import peewee as pw
from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from litequeue.base.errors import DatabaseError, JobNotFoundError, LiteQueueError
from litequeue.base.secrets import redact

from . import actions, batches, data, format, security, stats, views
from .settings import WebSettings

log = logging.getLogger("litequeue.web")


def create_app(settings: WebSettings | None = None) -> Flask:
    """The status page for ``settings.db``. Never in debug mode; reads through a read-only
    connection; every action is a guarded POST (see security.py)."""
    settings = settings or WebSettings()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key, DEBUG=False, PROPAGATE_EXCEPTIONS=False,
        SESSION_COOKIE_NAME="litequeue_session", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict", JSON_SORT_KEYS=False, MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.jinja_env.filters.update(format.FILTERS)
    app.jinja_env.globals.update(csrf_token=security.csrf_token, chart=format.chart,
                                 csrf_field=security.CSRF_FIELD)
    dbs = data.Databases(settings)
    app.extensions["litequeue"] = {"settings": settings, "databases": dbs}

    @app.context_processor
    def page_globals() -> dict[str, Any]:
        return {"read_only": settings.read_only, "refresh_ms": int(settings.refresh_seconds * 1000),
                "db_name": redact(settings.db)}

    security.install(app, settings)
    views.register(app, settings, dbs)
    actions.register(app, dbs, settings.app)
    stats.register(app, dbs)
    batches.register(app, dbs)

    def failure(status: int, message: str) -> Any:
        if request.path.startswith("/api/") or request.path == "/metrics":
            return jsonify({"error": message}), status
        return render_template("error.html", status=status, message=message, page=None), status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        return failure(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(data.BadRequest)
    def bad_request(exc: data.BadRequest) -> Any:
        return failure(400, str(exc))

    @app.errorhandler(JobNotFoundError)
    def not_found(exc: JobNotFoundError) -> Any:
        return failure(404, str(exc))

    @app.errorhandler(DatabaseError)
    def no_database(exc: DatabaseError) -> Any:
        dbs.forget_reader()
        return failure(503, str(exc))

    @app.errorhandler(LiteQueueError)
    def refused(exc: LiteQueueError) -> Any:
        return failure(409, str(exc))

    @app.errorhandler(pw.DatabaseError)
    def database_failed(exc: pw.DatabaseError) -> Any:
        # A deleted or replaced file, a lock held too long: start over on the next request.
        dbs.forget_reader()
        log.warning("database error on %s: %s", request.path, exc)
        return failure(503, f"the database did not answer: {exc}")

    return app
