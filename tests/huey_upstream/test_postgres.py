"""Huey's own test suite against LiteQueue on PostgreSQL: one database for the module,
every litequeue table emptied before each test (a fresh database per test is too slow)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import fresh_pg_database
from tests.huey_upstream.adapter import adapted

_pg: dict[str, Any] = {}


@pytest.fixture(scope="module", autouse=True)
def huey_pg_database() -> Iterator[None]:
    import psycopg2

    # Durability is not under test here; commits without an fsync keep the run quick.
    with fresh_pg_database("lq_huey", fsync=False) as url:
        conn = psycopg2.connect(url)
        conn.autocommit = True
        _pg.update(url=url, conn=conn)
        try:
            yield
        finally:
            conn.close()
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
