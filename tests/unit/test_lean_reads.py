"""Issue 15: the read commands (``status``, ``jobs list``, ``jobs show``, ``health``) read the
ledger alone, so they start quickly: no Huey (which imports every driver installed), no
Flask, no URL machinery (playhouse.db_url) for a SQLite file. (peewee itself still imports
psycopg2 when it is installed.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("huey", "flask", "redis", "playhouse.db_url", "watchdog", "litequeue.engine", "litequeue.runtime",
         "litequeue.app")

PROBE = """
import json, sys
import litequeue.cli
try:
    litequeue.cli.main(sys.argv[1:], prog_name="litequeue")
except SystemExit:
    pass
print(json.dumps([m for m in {heavy!r} if m in sys.modules]))
"""


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    from litequeue import LiteQueue

    path = tmp_path_factory.mktemp("lean") / "lq.db"
    app = LiteQueue("lean", db=path)

    @app.task()
    def hello(n):
        return n

    job = hello(1)
    app.storage.close()
    return str(path), job.id


@pytest.mark.parametrize("command", ["status", "jobs list", "jobs show {id}", "health"])
def test_read_commands_import_no_huey_flask_or_driver(db: tuple[str, str], command: str) -> None:
    path, job_id = db
    args = ["--db", path, *command.format(id=job_id).split()]
    out = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
                         capture_output=True, text=True, timeout=60)
    assert job_id in out.stdout or command in ("status", "health"), out.stdout + out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [], out.stdout


def test_the_package_still_offers_everything_on_first_use() -> None:
    out = subprocess.run([sys.executable, "-c", "import litequeue, sys; assert 'huey' not in sys.modules; "
                          "from litequeue import LiteQueue, crontab, current_job, task; print(LiteQueue.__name__)"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "LiteQueue", out.stderr
