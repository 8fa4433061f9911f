"""Storage faults on PostgreSQL: a database that refuses writes is named, with the reason."""

from __future__ import annotations

import pytest

from litequeue import DatabaseReadOnlyError, LiteQueue


def test_read_only_postgres_database_raises_a_clear_error(pg_url: str) -> None:
    import psycopg2

    app = LiteQueue("pgro", db=pg_url)

    @app.task()
    def work(i: int) -> int:
        return i

    work(1)
    app.storage.close()
    name = pg_url.rsplit("/", 1)[-1]
    admin = psycopg2.connect(pg_url)
    admin.autocommit = True
    admin.cursor().execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    admin.close()
    with pytest.raises(DatabaseReadOnlyError) as info:
        work(2)
    text = str(info.value)
    assert text.startswith(f"database is read-only: database {name} on 127.0.0.1:5432 (the server refused the "
                           "write: cannot execute INSERT in a read-only transaction)"), text
    assert "nothing was written" in text
    assert app.storage.sql("SELECT COUNT(*) FROM lq_job").fetchone()[0] == 1
    app.storage.close()
