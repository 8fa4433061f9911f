"""Huey's own test suite against LiteQueue on PostgreSQL: one database for the module,
every litequeue table emptied before each test (a fresh database per test is too slow)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require_service
from tests.huey_upstream.adapter import adapted

_pg: dict[str, Any] = {}


@pytest.fixture(scope="module", autouse=True)
def huey_pg_database() -> Iterator[None]:
    try:
        import psycopg2
    except ImportError:
        require_service("PostgreSQL", "psycopg2 is not installed")
    name = f"lq_huey_{os.getpid()}_{int(time.time() * 1000) % 10**9}"
    try:
        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", connect_timeout=3)
    except Exception as exc:  # noqa: BLE001
        require_service("PostgreSQL", str(exc))
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    # Durability is not under test here; commits without an fsync keep the run quick.
    admin.cursor().execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=name)
    conn.autocommit = True
    _pg.update(url=f"postgresql://postgres@127.0.0.1:5432/{name}", conn=conn, name=name)
    try:
        yield
    finally:
        conn.close()
        admin.cursor().execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()
        _pg.clear()


def _fresh(case: Any) -> str:
    cur = _pg["conn"].cursor()
    cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'lq\\_%%' "
                "AND tablename <> 'lq_meta'")
    # DELETE, not TRUNCATE: on a handful of rows it is many times quicker.
    for (table,) in cur.fetchall():
        cur.execute(f"DELETE FROM {table}")
    return _pg["url"]


globals().update(adapted(_fresh, lambda case: None, "postgres"))
