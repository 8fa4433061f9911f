"""Issue 15: the read commands (``status``, ``jobs list``, ``jobs show``, ``health``, ``stats``)
read the ledger alone, so they start quickly: no Huey (which imports every driver installed), no
Flask, no watchdog, no URL machinery (playhouse.db_url) for a SQLite file, and none of
litequeue's engine, runtime or app layers, and no psycopg 3 on SQLite (peewee's own import
of it is deferred, ``store/lazy_drivers.py``; peewee still imports psycopg2 when it is
installed). When one slips in, the failure names it and the chain of imports that brought it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("huey", "flask", "redis", "playhouse.db_url", "watchdog", "litequeue.engine", "litequeue.runtime",
         "litequeue.app", "psycopg")

PROBE = """
import json, sys

HEAVY = json.loads(sys.argv.pop(1))
chains = {}


class FirstImporter:
    # Records, for each heavy module, who imported it first: the litequeue frames on the
    # stack and every module body being executed (an import at the top of a module).
    def find_spec(self, fullname, path=None, target=None):
        for heavy in HEAVY:
            if heavy not in chains and (fullname == heavy or fullname.startswith(heavy + ".")):
                chain = []
                frame = sys._getframe(1)
                while frame is not None:
                    name = frame.f_globals.get("__name__") or "?"
                    code = frame.f_code
                    if name != "__main__" and not code.co_filename.startswith("<frozen") and (
                            name.split(".")[0] in ("litequeue", "litequeue_web") or code.co_name == "<module>"):
                        where = "" if code.co_name == "<module>" else " in " + code.co_name + "()"
                        chain.append(name + ":" + str(frame.f_lineno) + where)
                    frame = frame.f_back
                chains[heavy] = " -> ".join([*reversed(chain), fullname])
        return None


sys.meta_path.insert(0, FirstImporter())
import litequeue.cli
try:
    litequeue.cli.main(sys.argv[1:], prog_name="litequeue")
except SystemExit:
    pass
print(json.dumps(chains))
print(json.dumps([m for m in HEAVY if m in sys.modules]))
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


@pytest.mark.parametrize("command", ["status", "jobs list", "jobs show {id}", "health", "stats"])
def test_read_commands_import_no_huey_flask_or_driver(db: tuple[str, str], command: str) -> None:
    path, job_id = db
    args = ["--db", path, *command.format(id=job_id).split()]
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY), *args],
                         capture_output=True, text=True, timeout=60)
    assert job_id in out.stdout or command in ("status", "health", "stats"), out.stdout + out.stderr
    *shown, chains_line, heavy_line = out.stdout.strip().splitlines()
    chains = json.loads(chains_line)
    why = "\n".join(f"  {heavy}, first imported by: {chain}" for heavy, chain in chains.items())
    assert json.loads(heavy_line) == [], (
        f"`litequeue {command}` imported heavy modules:\n{why}\n" + "\n".join(shown) + out.stderr)


def test_the_package_still_offers_everything_on_first_use() -> None:
    out = subprocess.run([sys.executable, "-c", "import litequeue, sys; assert 'huey' not in sys.modules; "
                          "from litequeue import LiteQueue, crontab, current_job, task; print(LiteQueue.__name__)"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "LiteQueue", out.stderr
