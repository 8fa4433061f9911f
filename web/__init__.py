"""litequeue's status page: a small Flask app (``create_app``) served by ``litequeue serve-web``."""

from __future__ import annotations

from .app import create_app
from .settings import WebSettings, check_bind, read_password_file

__all__ = ["WebSettings", "check_bind", "create_app", "read_password_file"]
