"""Request guards: Host check, HTTP Basic auth, CSRF token and same-origin check for POSTs."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, request, session

from .settings import LOOPBACK_NAMES, WebSettings, is_loopback

OPEN_ENDPOINTS = frozenset({"livez"})
CSRF_FIELD = "csrf_token"


def _same(a: str, b: str) -> bool:
    # Hash first so the comparison takes the same time whatever the lengths.
    return hmac.compare_digest(hashlib.sha256(a.encode()).digest(), hashlib.sha256(b.encode()).digest())


def csrf_token() -> str:
    """This browser session's CSRF token (made on first use)."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_post() -> str | None:
    """Why this POST must be refused (cross-origin, no CSRF token), or None when it may run."""
    expected = request.host_url.rstrip("/").lower()
    origin = request.headers.get("Origin")
    referer = request.headers.get("Referer")
    if origin and origin != "null":
        if origin.rstrip("/").lower() != expected:
            return f"cross-origin request from {origin} refused"
    elif referer:
        if _origin_of(referer) != expected:
            return "cross-origin request refused (Referer from another site)"
    else:
        return "request without Origin or Referer refused; submit the form from the page"
    sent = request.form.get(CSRF_FIELD, "")
    token = session.get("csrf")
    if not token or not sent or not _same(str(token), sent):
        return "missing or stale CSRF token; reload the page and try again"
    return None


def _host_allowed(settings: WebSettings) -> bool:
    if not is_loopback(settings.host):
        return True
    host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    return host.lower() in LOOPBACK_NAMES


def _authorized(settings: WebSettings) -> bool:
    if not settings.password:
        return True
    auth = request.authorization
    return bool(auth and auth.type == "basic" and _same(auth.password or "", settings.password))


def install(app: Blueprint, settings: WebSettings, hosted: bool = False) -> None:
    """Guard every request of the page: Host, Basic auth, and the POST checks (``hosted``:
    mounted in an application, whose own login and Host checks come first)."""

    @app.before_request
    def guard() -> Response | None:
        if not hosted and not _host_allowed(settings):
            abort(421, "this status page answers only to localhost / 127.0.0.1")
        if (request.endpoint or "").rsplit(".", 1)[-1] not in OPEN_ENDPOINTS and not _authorized(settings):
            return Response("litequeue status page: log in (any user name, the password from the "
                            "password file)\n", 401, {"WWW-Authenticate": 'Basic realm="litequeue", charset="UTF-8"'},
                            mimetype="text/plain")
        if request.method == "POST":
            if settings.read_only:
                abort(403, "this status page is read-only (started with --read-only)")
            reason = check_post()
            if reason:
                abort(403, reason)
        return None

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'")
        return response
