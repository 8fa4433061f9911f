"""Huey's own test suite against LiteQueue on a fresh SQLite file per test."""

from __future__ import annotations

from tests.huey_upstream.adapter import adapted, sqlite_cleanup, sqlite_db

globals().update(adapted(sqlite_db, sqlite_cleanup, "sqlite"))
