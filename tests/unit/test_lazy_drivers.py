"""peewee imported by litequeue without psycopg 3 (``store/lazy_drivers.py``): it is not loaded on
SQLite, and the first PostgreSQL database leaves peewee exactly as its own import would."""

from __future__ import annotations

import json
import subprocess
import sys

#: What peewee's own import binds for its PostgreSQL drivers, as one line of JSON.
BOUND = """
import json, sys, peewee
def name(value):
    return None if value is None else getattr(value, "__qualname__", None) or getattr(value, "__name__", repr(value))
names = ("psycopg", "psycopg2", "pg_extensions", "pg_register_uuid", "Json_pg2", "Json_pg3", "Jsonb_pg3",
         "TransactionStatus")
bound = {n: name(getattr(peewee, n, None)) for n in names}
for adapter in (peewee.Psycopg2Adapter, peewee.Psycopg3Adapter):
    for state in ("txn_idle", "txn_inerror", "txn_unknown"):
        bound[adapter.__name__ + "." + state] = repr(getattr(adapter, state, None))
print(json.dumps(bound, sort_keys=True))
"""


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_importing_litequeue_loads_no_psycopg() -> None:
    loaded = _run("import sys, litequeue, litequeue.store.models, peewee; "
                  "print(sorted(m for m in sys.modules if m.split('.')[0] == 'psycopg'))")
    assert loaded == "[]"


def test_psycopg2_is_imported_by_peewee_as_before() -> None:
    # peewee's import registers psycopg2's UUID adapter: a program using psycopg2 may rely on it.
    out = _run("import uuid, litequeue, peewee, psycopg2.extensions as x\n"
               "print(peewee.psycopg2 is not None, x.adapt(uuid.UUID(int=1)).getquoted()[:5])")
    assert out == "True b\"'0000\"", out


def test_only_the_importing_thread_is_refused_psycopg() -> None:
    out = _run("import threading\n"
               "from litequeue.store.lazy_drivers import _HideDrivers\n"
               "hider = _HideDrivers()\n"
               "seen = []\n"
               "t = threading.Thread(target=lambda: seen.append(hider.find_spec('psycopg')))\n"
               "t.start(); t.join()\n"
               "try:\n    hider.find_spec('psycopg.pq'); seen.append('allowed')\n"
               "except ModuleNotFoundError:\n    seen.append('refused')\n"
               "print(seen)")
    assert out == "[None, 'refused']"


def test_the_first_postgresql_database_binds_what_peewees_own_import_would() -> None:
    plain = json.loads(_run(BOUND))
    assert plain["psycopg"] == "psycopg" and plain["psycopg2"] == "psycopg2", plain  # both installed for the tests
    deferred = json.loads(_run("import litequeue, peewee\n"
                               "assert peewee.psycopg is None and peewee.psycopg2 is not None\n"
                               "peewee.PostgresqlDatabase('never_connected', prefer_psycopg3=True)\n" + BOUND))
    assert deferred == plain


def test_a_driver_imported_before_litequeue_is_kept() -> None:
    bound = json.loads(_run("import psycopg, litequeue\n" + BOUND))
    assert bound == json.loads(_run(BOUND))


def test_playhouse_postgres_ext_works_after_the_deferred_import() -> None:
    out = _run("import litequeue, peewee\n"
               "from playhouse.postgres_ext import PostgresqlExtDatabase\n"
               "db = PostgresqlExtDatabase('never_connected')\n"
               "print(type(db._adapter).__name__, peewee.psycopg2 is not None)")
    assert out == "Psycopg2ExtAdapter True"
