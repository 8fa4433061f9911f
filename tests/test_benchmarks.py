"""The benchmark still works (CI runs its --quick mode; no thresholds: this machine is
shared and noisy, so speed is judged from benchmarks/run.py's own report, not here)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT, pg_connect


def test_quick_benchmark_runs_and_reports(tmp_path):
    """--quick on smaller counts still: that every part runs and reports, not its figures."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--jobs", "500",
                           "--bulk", "5000", "--samples", "3"],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| litequeue (full) |" in proc.stdout and "Raw-SQLite ceiling" in proc.stdout
    written = proc.stdout.strip().splitlines()[-1].split("written:")[-1].strip()
    report = json.loads((ROOT / written).read_text())
    assert report


def test_postgres_benchmark_runs_and_reports(pg_url):
    """The PostgreSQL run on tiny counts: 1 and 2 consumers, a database of its own per
    measurement (created through the test's database, and dropped again)."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--postgres", "--quick",
                           "--jobs", "60", "--samples", "2", "--idle", "0.2", "--pg-url", pg_url],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| litequeue | 1 |" in proc.stdout and "| litequeue | 2 |" in proc.stdout, proc.stdout
    written = proc.stdout.strip().splitlines()[-1].split("written:")[-1].strip()
    report = json.loads((ROOT / written).read_text())
    for consumers in (1, 2):
        run = report["runs"][f"litequeue/{consumers}"]["repeats"][0]
        assert run["drained"] == 60 and run["drain_per_s"] > 0 and len(run["pickup_ms"]) == 2
    # Each peer either ran (and has its ratio to litequeue) or is listed with why it did not.
    for name in ("procrastinate", "pgqueuer", "oban"):
        system = report["systems"][name]
        assert "skipped" in system or f"{name}/1" in report["ratios"]["vs"], system
    used = [r["database"] for run in report["runs"].values() for r in run["repeats"]]
    conn = pg_connect(pg_url)
    try:
        cur = conn.cursor()
        cur.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (used,))
        leftovers = cur.fetchall()
    finally:
        conn.close()
    assert len(used) >= 2 and leftovers == [], "a benchmark database was left behind"


def test_page_load_benchmark_runs_and_reports():
    """benchmarks/page_load.py on tiny counts: both drains finish, every page was fetched by
    the clients, and none answered with an error."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "page_load.py"), "--jobs", "400",
                           "--clients", "4", "--client-procs", "1", "--consumers", "1", "--refresh", "0.2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for page in ("overview", "jobs", "job"):
        assert f"| {page} |" in proc.stdout and f"| {page} (live JSON) |" in proc.stdout, proc.stdout
    assert "drain alone:" in proc.stdout and ", 0 errors" in proc.stdout, proc.stdout


def test_commit_pages_counts_the_frames_of_each_kind_of_commit():
    """benchmarks/commit_pages.py reads each commit's frames from the WAL: every kind of
    commit writes at least one page, and the per-table breakdown adds up to the mean."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "commit_pages.py"), "--ledger", "300",
                           "--samples", "8", "--round", "4", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = json.loads(proc.stdout)
    for kind in ("litequeue_enqueue", "litequeue_claim", "litequeue_ack", "litequeue_round_4", "huey_enqueue"):
        assert figures[kind] >= 1, (kind, figures)
    assert set(figures["by_btree"]) == {"enqueue", "claim", "ack", "round"}
    assert "lq_job" in figures["by_btree"]["enqueue"] and "lq_ready" in figures["by_btree"]["enqueue"]


def test_read_load_benchmark_runs_and_reports():
    """benchmarks/read_load.py on tiny counts: both drains finish beside a small ledger, every
    reader ran during the second one, and the page answered every request."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "read_load.py"), "--jobs", "300",
                           "--history", "300", "--consumers", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| alone |" in proc.stdout and "| with readers |" in proc.stdout, proc.stdout
    for reader in ("jobs list --json (100,000)", "stats --since 30d", "top --once", "page held open"):
        assert f"| {reader}" in proc.stdout, proc.stdout
    assert "page errors: 0" in proc.stdout, proc.stdout
