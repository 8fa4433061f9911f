"""The status page inside a Django project: a Django view, for staff only (the admin's
login), that hands the request to the page's Flask app over WSGI, under the prefix the
project mounted it at (``path("queue/", include("litequeue.contrib.django.urls"))``).

The page's links, forms, assets and live updates carry the prefix (the prefix is the WSGI
``SCRIPT_NAME`` the Flask app sees). Its forms keep their own CSRF token (in a cookie of
the page, ``litequeue_session``) and same-origin check, so Django's CSRF middleware is
told to leave its requests alone.
"""

from __future__ import annotations

import hashlib
import io
import threading
from http.cookies import SimpleCookie
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

_app: Any = None
_lock = threading.Lock()


def flask_app() -> Any:
    """The status page's Flask app for the project's queue (built once per process)."""
    global _app
    if _app is None:
        with _lock:
            if _app is None:
                _app = _build()
    return _app


def _build() -> Any:
    from django.conf import settings
    from flask import Flask
    from werkzeug.exceptions import HTTPException

    import litequeue_web
    from litequeue.contrib.django import get_queue

    queue = get_queue()
    queue.placement()
    web = dict(queue.django_config.get("web") or {})
    app = Flask("litequeue_django", static_folder=None)
    app.config.update(
        SECRET_KEY=hashlib.sha256(b"litequeue status page\0" + str(settings.SECRET_KEY).encode()).digest(),
        SESSION_COOKIE_NAME="litequeue_session", SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=bool(getattr(settings, "SESSION_COOKIE_SECURE", False)),
        MAX_CONTENT_LENGTH=64 * 1024, DEBUG=False, PROPAGATE_EXCEPTIONS=False)
    page = litequeue_web.blueprint(queue, **web)
    app.register_blueprint(page)

    @app.errorhandler(HTTPException)
    def unmatched(exc: HTTPException) -> Any:  # a URL no view of the page matched
        return page.failure(exc.code or 500, exc.description or exc.name)  # type: ignore[attr-defined]

    return app


def wsgi_environ(request: HttpRequest, path: str) -> dict[str, Any]:
    """The request as the Flask app sees it: mounted at the part of the URL before ``path``."""
    environ = dict(request.environ)
    script = request.path[: len(request.path) - len(path)] if path else request.path
    environ["SCRIPT_NAME"] = _wsgi_str(script.rstrip("/"))
    environ["PATH_INFO"] = _wsgi_str("/" + path)
    body = request.body
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def _wsgi_str(text: str) -> str:
    return text.encode("utf-8").decode("latin-1")  # PEP 3333: bytes as latin-1 characters


@csrf_exempt  # the page's POSTs carry its own CSRF token and same-origin check
@staff_member_required
def status_page(request: HttpRequest, path: str = "") -> HttpResponse:
    """The status page (staff only: anyone else is sent to the admin's login)."""
    started: dict[str, Any] = {}
    chunks: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.update(status=status, headers=headers)
        return chunks.append

    result = flask_app()(wsgi_environ(request, path), start_response)
    try:
        chunks.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    code, _, reason = started["status"].partition(" ")
    response = HttpResponse(b"".join(chunks), status=int(code), reason=reason or None)
    for name, value in started["headers"]:
        if name.lower() == "set-cookie":
            cookie: SimpleCookie = SimpleCookie()
            cookie.load(value)
            for key, morsel in cookie.items():
                response.cookies[key] = morsel
        else:
            response[name] = value
    return response
