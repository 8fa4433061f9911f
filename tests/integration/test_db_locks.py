"""Opening the database again in a process that already has it open keeps that process's
SQLite locks. Closing any other file descriptor on the database file drops every POSIX lock
the process holds on it; another process then takes itself for the last user when it closes,
and deletes the -wal and -shm files under the first process's open connection (its next
statement: "file is not a database" or "disk I/O error"). The fuzz suite found it: two
commands run in one process (a consumer, then another command) broke the first one's database.
"""

from __future__ import annotations

import subprocess
import sys

from litequeue.store.database import open_database


def test_opening_the_database_again_keeps_the_locks_of_connections_already_open(tmp_path):
    path = tmp_path / "lq.db"
    first = open_database(path)
    first.execute_sql("CREATE TABLE t (x INTEGER)")
    first.execute_sql("INSERT INTO t VALUES (1)")
    assert (tmp_path / "lq.db-wal").exists()

    second = open_database(path)  # a second command in this process (the status page, a CLI test)
    second.close()

    # Another process opens, writes and closes: only the last connection may remove the WAL.
    code = (f"import sqlite3; c = sqlite3.connect({str(path)!r}); c.execute('INSERT INTO t VALUES (2)'); "
            "c.commit(); c.close()")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert (tmp_path / "lq.db-wal").exists(), "the other process deleted the WAL under an open connection"
    assert [r[0] for r in first.execute_sql("SELECT x FROM t ORDER BY x").fetchall()] == [1, 2]
    first.execute_sql("INSERT INTO t VALUES (3)")
    first.close()
