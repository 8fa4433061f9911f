"""``blueprint(queue)``: the status page as a Flask blueprint an application mounts under its
own prefix and behind its own login (``create_app`` serves the same blueprint at ``/``).

The page renders with a Jinja environment of its own (its templates, filters and ``url_for``
never meet the host application's: a host's ``base.html`` or ``ago`` filter changes nothing),
and its ``url_for`` builds every link, form, asset and live-update URL inside the blueprint,
so each carries the prefix. Its POST forms keep their CSRF token (in the host's session) and
same-origin check; it reads through a read-only connection and never unpickles a payload.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import flask
import peewee as pw
from flask import Blueprint, current_app, jsonify, request
from jinja2 import FileSystemLoader
from werkzeug.exceptions import HTTPException

from litequeue.base.errors import ConfigurationError, DatabaseError, JobNotFoundError, LiteQueueError
from litequeue.base.secrets import redact

from . import actions, batches, data, format, now, security, shared_reads, stats, views
from .settings import WebSettings

if TYPE_CHECKING:
    from litequeue.app import LiteQueue

log = logging.getLogger("litequeue.web")
HERE = Path(__file__).resolve().parent


class Pages:
    """The page's own Jinja environment (one per host application) and its ``render``."""

    def __init__(self, name: str, settings: WebSettings) -> None:
        self.name = name
        self.settings = settings

    def url_for(self, endpoint: str, **values: Any) -> str:
        """``url_for('jobs')`` of a template: the blueprint's ``jobs`` (and ``static``)."""
        return flask.url_for(endpoint if "." in endpoint else f"{self.name}.{endpoint}", **values)

    def root(self) -> str:
        """The page's own root without the trailing slash (``/queue`` when mounted there),
        once a request: the lists build their 50 rows of links from it (url_for is slow)."""
        if "litequeue_root" not in flask.g:
            flask.g.litequeue_root = self.url_for("overview").rstrip("/")
        return str(flask.g.litequeue_root)

    def env(self) -> Any:
        key = f"litequeue_web.{self.name}"
        env = current_app.extensions.get(key)
        if env is None:
            env = current_app.create_jinja_environment()
            env.loader = FileSystemLoader(HERE / "templates")
            env.filters.update(format.FILTERS)
            env.globals.update(url_for=self.url_for, csrf_token=security.csrf_token, chart=format.chart,
                               csrf_field=security.CSRF_FIELD, page_root=self.root)
            current_app.extensions[key] = env
        return env

    def render(self, template: str, **context: Any) -> str:
        if not current_app.secret_key:
            raise ConfigurationError("the status page's forms keep a CSRF token in Flask's session: "
                                     "set app.secret_key (SECRET_KEY) on the application")
        context.update(read_only=self.settings.read_only, refresh_ms=int(self.settings.refresh_seconds * 1000),
                       db_name=redact(self.settings.db))
        current_app.update_template_context(context)
        return str(self.env().get_template(template).render(context))


def is_api() -> bool:
    endpoint = (request.endpoint or "").rsplit(".", 1)[-1]
    if request.endpoint is None:  # a URL no view matched (create_app serves the page at /)
        return request.path.startswith("/api/")
    return endpoint.startswith("api_") or endpoint == "prometheus"


def make_blueprint(settings: WebSettings, name: str = "litequeue", hosted: bool = False) -> Blueprint:
    """The page's blueprint for ``settings``; ``hosted``: mounted in an application that
    does its own login and Host checks (the page's Basic auth applies only with a password)."""
    bp = Blueprint(name, __name__, static_folder=str(HERE / "static"), static_url_path="/static")
    pages = Pages(name, settings)
    dbs = data.Databases(settings)
    security.install(bp, settings, hosted=hosted)
    shared_reads.install(bp, settings.refresh_seconds)
    views.register(bp, settings, dbs, pages.render)
    actions.register(bp, dbs, settings.app)
    stats.register(bp, dbs, pages.render)
    batches.register(bp, dbs, pages.render)
    now.register(bp, dbs, pages.render)

    def failure(status: int, message: str) -> Any:
        if is_api():
            return jsonify({"error": message}), status
        return pages.render("error.html", status=status, message=message, page=None), status

    @bp.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        return failure(exc.code or 500, exc.description or exc.name)

    @bp.errorhandler(data.BadRequest)
    def bad_request(exc: data.BadRequest) -> Any:
        return failure(400, str(exc))

    @bp.errorhandler(JobNotFoundError)
    def not_found(exc: JobNotFoundError) -> Any:
        return failure(404, str(exc))

    @bp.errorhandler(DatabaseError)
    def no_database(exc: DatabaseError) -> Any:
        dbs.forget_reader()
        return failure(503, str(exc))

    @bp.errorhandler(LiteQueueError)
    def refused(exc: LiteQueueError) -> Any:
        return failure(409, str(exc))

    @bp.errorhandler(pw.DatabaseError)
    def database_failed(exc: pw.DatabaseError) -> Any:
        # A deleted or replaced file, a lock held too long: start over on the next request.
        dbs.forget_reader()
        log.warning("database error on %s: %s", request.path, exc)
        return failure(503, f"the database did not answer: {exc}")

    bp.failure = failure  # type: ignore[attr-defined]  # create_app's handler for URLs no view matched
    return bp


def blueprint(queue: LiteQueue | None = None, *, db: str | None = None, name: str = "litequeue",
              read_only: bool = False, password: str | None = None, refresh_seconds: float = 3.0,
              page_size: int = 50) -> Blueprint:
    """The status page of ``queue`` (or of the database ``db``) as a blueprint:
    ``app.register_blueprint(litequeue_web.blueprint(queue), url_prefix="/queue")``. Put it
    behind the application's own login (a ``before_request`` on the blueprint or the app);
    its forms need the application's ``SECRET_KEY``. ``name``: the blueprint's name (two
    pages in one app need two)."""
    target = db if db is not None else (str(queue.db_target) if queue is not None else None)
    settings = WebSettings(db=target, password=password, read_only=read_only, app=queue,
                           refresh_seconds=refresh_seconds, page_size=page_size)
    return make_blueprint(settings, name, hosted=True)
