"""On SQLite a round that only claims commits without waiting for the disk; every other write
still waits, and PostgreSQL always waits (``store/commit_sync.py``): fsyncs counted with strace
on a real SQLite file, the connection's level read back after each round, and the statements
PostgreSQL is sent. Also: errors of PostgreSQL's pipelined rounds reach the caller as peewee's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from litequeue import LiteQueue
from litequeue.base.states import AttemptOutcome, JobStatus
from litequeue.base.values import Claim, Finished

HOLDER = "unit-consumer"

#: Runs in a child under strace: one enqueue, a claim-only round, an ack round; a write to
#: fd 2 of a marker between them, so the fsyncs of each step can be told apart.
CHILD = """
import os, sys, time
from litequeue import LiteQueue
from litequeue.base.states import AttemptOutcome, JobStatus
from litequeue.base.values import Finished
app = LiteQueue("sync", db=sys.argv[1], durability=sys.argv[2])
job = app.task(name="job")(lambda: None)
job()
job()
os.write(2, b"MARK claim\\n")
_, claims = app.storage.ack_and_claim("unit-consumer", [], None, 1, start_first=1)
os.write(2, b"MARK ack\\n")
now = time.time()
done = Finished(claims[0], "job", JobStatus.SUCCEEDED, AttemptOutcome.SUCCEEDED, now, now)
app.storage.ack_and_claim("unit-consumer", [done], None, 0)
os.write(2, b"MARK end\\n")
"""


def fsyncs_per_step(tmp_path: Path, durability: str) -> dict[str, int]:
    strace = shutil.which("strace")
    assert strace, "strace is not installed (apt-get install strace; .ci/run installs it)"
    out = subprocess.run([strace, "-f", "-e", "trace=fsync,fdatasync,write", "-e", "signal=none", sys.executable,
                          "-c", CHILD, str(tmp_path / "lq.db"), durability],
                         capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert out.returncode == 0, out.stderr[-3000:]
    counts: dict[str, int] = {}
    step = None
    for line in out.stderr.splitlines():
        if "MARK " in line and "write(2" in line:
            step = line.split("MARK ")[1].split("\\n")[0]
        elif step and ("fdatasync(" in line or "fsync(" in line):
            counts[step] = counts.get(step, 0) + 1
    return counts


def test_a_claim_only_round_does_not_wait_for_the_disk_and_an_ack_round_does(tmp_path: Path) -> None:
    counts = fsyncs_per_step(tmp_path, "full")
    assert counts.get("claim", 0) == 0, counts
    assert counts.get("ack", 0) >= 1, counts  # the ack waits, and with it the claim before it


def test_fast_durability_waits_for_the_disk_in_neither(tmp_path: Path) -> None:
    counts = fsyncs_per_step(tmp_path, "fast")
    assert counts.get("claim", 0) == 0 and counts.get("ack", 0) == 0, counts


@pytest.fixture
def app(tmp_path: Path) -> Any:
    app = LiteQueue("unit", db=tmp_path / "lq.db")
    app.job = app.task(name="job")(lambda: None)  # type: ignore[attr-defined]
    yield app
    app.storage.close()


def _statements(app: LiteQueue) -> list[str]:
    seen: list[str] = []
    app.storage.database.connection().set_trace_callback(seen.append)
    return seen


def _level(app: LiteQueue) -> int:
    return app.storage.database.execute_sql("PRAGMA synchronous").fetchone()[0]


def _done(claim: Claim) -> Finished:
    now = time.time()
    return Finished(claim, "job", JobStatus.SUCCEEDED, AttemptOutcome.SUCCEEDED, now, now)


def test_the_connection_waits_for_the_disk_again_once_the_claim_round_ended(app: LiteQueue) -> None:
    app.job()
    assert _level(app) == 2  # FULL
    seen = _statements(app)
    _, claims = app.storage.ack_and_claim(HOLDER, [], None, 1, start_first=1)
    assert claims and len(claims) == 1
    relaxed = [i for i, s in enumerate(seen) if s == "PRAGMA synchronous=NORMAL"]
    restored = [i for i, s in enumerate(seen) if s == "PRAGMA synchronous=FULL"]
    begin = next(i for i, s in enumerate(seen) if s.startswith("BEGIN"))
    commit = next(i for i, s in enumerate(seen) if s.startswith("COMMIT"))
    assert relaxed == [begin - 1] and restored == [commit + 1], seen
    assert _level(app) == 2
    seen.clear()
    app.storage.ack_and_claim(HOLDER, [_done(claims[0])], None, 1)
    assert not any("synchronous" in s for s in seen), seen
    assert app.storage.sql("SELECT status FROM lq_job").fetchone()[0] == "succeeded"


def test_a_connection_that_cannot_be_put_back_is_closed_not_left_relaxed(app: LiteQueue, monkeypatch) -> None:
    app.job()
    db = app.storage.database
    real = db.execute_sql

    def refuse_restore(sql: str, *args: Any, **kwargs: Any) -> Any:
        if sql == "PRAGMA synchronous=FULL":
            raise RuntimeError("refused")
        return real(sql, *args, **kwargs)

    monkeypatch.setattr(db, "execute_sql", refuse_restore)
    first = db.connection()
    _, claims = app.storage.ack_and_claim(HOLDER, [], None, 1, start_first=1)  # committed: its outcome stands
    assert claims and len(claims) == 1
    monkeypatch.setattr(db, "execute_sql", real)
    assert db.connection() is not first  # a new connection, opened with the configured pragmas
    assert _level(app) == 2
    assert app.storage.sql("SELECT COUNT(*) FROM lq_ready WHERE claimed_by = ?", (HOLDER,)).fetchone()[0] == 1


def test_postgresql_claim_rounds_still_wait_for_the_disk(pg_url: str, monkeypatch) -> None:
    # synchronous_commit=off could lose a claim when the server alone crashes or fails over,
    # while the consumer that holds it keeps running its job on another host.
    app = LiteQueue("unit", db=pg_url)
    try:
        job = app.task(name="job")(lambda: None)
        job()
        db = app.storage.database
        seen: list[str] = []
        real = db.execute_sql

        def record(sql: str, *args: Any, **kwargs: Any) -> Any:
            seen.append(sql)
            return real(sql, *args, **kwargs)

        monkeypatch.setattr(db, "execute_sql", record)
        _, claims = app.storage.ack_and_claim(HOLDER, [], None, 1, start_first=1)
        assert claims and seen
        assert not any("synchronous" in s for s in seen), seen
        app.storage.ack_and_claim(HOLDER, [_done(claims[0])], None, 0)
        assert real("SELECT status FROM lq_job").fetchone()[0] == "succeeded"
    finally:
        app.storage.close()


def test_an_error_in_a_pipelined_round_is_raised_as_peewees(pg_url: str) -> None:
    import peewee

    from litequeue.store import dialect

    app = LiteQueue("unit", db=pg_url)
    try:
        db = app.storage.database
        with pytest.raises(peewee.DataError), db.atomic(), dialect.pipelined(db):
            db.execute_sql("UPDATE lq_meta SET value = value WHERE 1 / 0 = 1")  # raised at the pipeline's end
        with pytest.raises(peewee.IntegrityError), db.atomic(), dialect.pipelined(db):
            db.execute_sql("INSERT INTO lq_meta (key, value) VALUES ('schema_version', 'x')")
            db.execute_sql("SELECT 1").fetchone()  # raised at this read
        assert db.execute_sql("SELECT 1").fetchone()[0] == 1  # the connection is usable after the rollback
    finally:
        app.storage.close()
