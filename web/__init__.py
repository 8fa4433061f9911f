"""litequeue's status page: a small Flask app (``create_app``) served by ``litequeue serve-web``,
or a blueprint (``blueprint(queue)``) an application mounts under its own prefix."""

from __future__ import annotations

from .app import create_app
from .blueprint import blueprint
from .settings import WebSettings, check_bind, read_password_file

__all__ = ["WebSettings", "blueprint", "check_bind", "create_app", "read_password_file"]
