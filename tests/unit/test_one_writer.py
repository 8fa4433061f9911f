"""One writer owns every job state change: no code outside the writer files of
``litequeue/jobs/`` writes the queue or the ledger.

Allowed elsewhere: Huey's own key/value rows (results, locks, flags) in
``engine/storage_kv.py``; the inbox plugin's own table (and its layout in ``lq_meta``); the
migrations, which create and carry forward the schema. ``jobs/actions.py`` and
``jobs/retention.py`` are not writers: they open transactions and call the writer files."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRITE = re.compile(r"\b(?:INSERT INTO|UPDATE|DELETE FROM)\s+(lq_\w+)", re.IGNORECASE)
#: The writer files of the job state, one per stage of a job's life (litequeue/jobs/__init__.py).
JOB_WRITERS = ("rows", "batches", "unique", "dependencies", "enqueue", "claim", "finish", "recover", "cancel",
               "retry", "prune", "consumers", "limits", "counters")
ALLOWED: dict[str, set[str]] = {
    **{f"litequeue/jobs/{name}.py": {"*"} for name in JOB_WRITERS},
    "litequeue/store/migrations.py": {"*"},
    # migration 10's backfill of the per-minute counts (ACTIVITY), run by migrations.py only
    "litequeue/store/job_indexes.py": {"lq_activity"},
    # migration 11's backfill of the counters the acks write
    "litequeue/store/counters_schema.py": {"lq_activity", "lq_histogram"},
    "litequeue/engine/storage_kv.py": {"lq_kv"},
    "litequeue/inbox/": {"lq_inbox_file", "lq_meta"},
}


def allowed(rel: str, table: str) -> bool:
    for prefix, tables in ALLOWED.items():
        if rel == prefix or (prefix.endswith("/") and rel.startswith(prefix)):
            return "*" in tables or table in tables
    return False


def test_only_the_job_writers_write_jobs_and_queue_rows():
    offenders = []
    for path in sorted([*ROOT.glob("litequeue/**/*.py"), *ROOT.glob("web/**/*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text()
        # SQLite trigger bodies (kept by the schema's owner) are not writes of this module
        text = re.sub(r"CREATE TRIGGER.*?END\"", "", text, flags=re.DOTALL)
        for match in WRITE.finditer(text):
            if not allowed(rel, match.group(1)):
                line = text.count("\n", 0, match.start()) + 1
                offenders.append(f"{rel}:{line}: {match.group(0)}")
    assert offenders == [], "write these through the writer files of litequeue/jobs/:\n" + "\n".join(offenders)


def test_job_status_literals_come_from_jobstatus():
    """SQL names job statuses through ``JobStatus`` (consumer and inbox states are others)."""
    literal = re.compile(r"status\s*(?:=|IN|!=)\s*\(?\s*'(waiting|scheduled|queued|retrying|succeeded|failed|"
                         r"cancelled|expired)'")
    found = []
    for path in sorted([*ROOT.glob("litequeue/**/*.py"), *ROOT.glob("web/**/*.py")]):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if literal.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert found == []
