"""A host Flask application with litequeue's status page mounted under ``/queue`` behind its
own login, served over real HTTP on a loopback port (a thread of the test process)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Flask, redirect, render_template_string, request, session, url_for
from jinja2 import DictLoader
from werkzeug.serving import make_server

import litequeue_web


def host_app(queue: Any) -> Flask:
    app = Flask("host")
    app.config.update(SECRET_KEY="host-secret", LITEQUEUE_DB=str(queue.db_target))
    # The host has its own base.html and an "ago" filter: the page must use neither.
    app.jinja_loader = DictLoader({"base.html": "HOST BASE {% block content %}{% endblock %}"})
    app.jinja_env.filters["ago"] = lambda value: "HOST AGO"
    queue.init_app(app)
    page = litequeue_web.blueprint(queue)

    @page.before_request
    def staff_only() -> Any:
        if not session.get("staff"):
            return redirect(url_for("login", next=request.path))
        return None

    app.register_blueprint(page, url_prefix="/queue")

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "POST" and request.form.get("password") == "staff":
            session["staff"] = True
            return redirect(request.args.get("next") or "/queue/", 303)
        return render_template_string('<link rel="icon" href="data:,"><form method="post">'
                                      '<input name="password"><button>log in</button></form>')

    @app.get("/")
    def home() -> str:
        return render_template_string("{% extends 'base.html' %}{% block content %}home{% endblock %}")

    return app


@contextlib.contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) for the block; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


def make_queue(tmp_path: Path) -> Any:
    from litequeue import LiteQueue

    queue = LiteQueue("host", db=tmp_path / "queue.db")

    @queue.task()
    def boom(n: int) -> int:
        raise ValueError(f"<script>alert({n})</script>")

    queue.boom = boom
    return queue
