"""``create_app(settings)``: the Flask app of the status page, served by ``litequeue serve-web``
(the page itself is the blueprint of :mod:`litequeue_web.blueprint`, mounted at ``/``)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException

from .blueprint import make_blueprint
from .settings import WebSettings


def create_app(settings: WebSettings | None = None) -> Flask:
    """The status page for ``settings.db``. Never in debug mode; reads through a read-only
    connection; every action is a guarded POST (see security.py)."""
    settings = settings or WebSettings()
    app = Flask(__name__, static_folder=None)
    app.config.update(
        SECRET_KEY=settings.secret_key, DEBUG=False, PROPAGATE_EXCEPTIONS=False,
        SESSION_COOKIE_NAME="litequeue_session", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict", JSON_SORT_KEYS=False, MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    page = make_blueprint(settings)
    app.register_blueprint(page)
    app.extensions["litequeue"] = {"settings": settings}

    @app.errorhandler(HTTPException)
    def unmatched(exc: HTTPException) -> Any:  # a URL no view of the page matched
        return page.failure(exc.code or 500, exc.description or exc.name)  # type: ignore[attr-defined]

    return app
