"""Processes racing to create the same new database all succeed.

SQLite answers "database is locked" at once (no busy wait) to all but one of several
processes switching a new file to WAL; opening waits that out (it used to fail ~1 in 160
openings here: a consumer and a CLI command started together)."""

from __future__ import annotations

import subprocess
import sys


def test_processes_racing_to_create_a_database_all_open_it(tmp_path):
    failures = []
    for round_ in range(20):
        db = tmp_path / f"race{round_}.db"
        code = f"from litequeue.store.database import open_database; open_database({str(db)!r}).execute_sql('select 1')"
        procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            if proc.returncode:
                failures.append(err.strip().splitlines()[-1])
    assert failures == []
