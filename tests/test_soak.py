"""The soak (benchmarks/soak.py) passes a short run: producers of every kind, thread and
process consumers SIGKILLed and restarted, the inbox and the page at once, and every check
of its summary holds (no job lost or finished twice, callbacks once, counters equal to the
ledger, flat RSS and fds, a bounded database)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

CHECKS = ("| lost (produced, not succeeded or never ran) | 0 | yes |",
          "| finished twice (more runs than attempts) | 0 | yes |",
          "| /metrics finished totals = ledger |", "| status --json counts = ledger |",
          "| worker processes left alive by a killed consumer | 0 | yes |",
          "| database MiB after the first prune (middle -> last third) |")


def _soak(*args: str, timeout: float) -> str:
    proc = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "soak.py"), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()  # the soak stops every process it started on SIGTERM
        out, err = proc.communicate(timeout=60)
        pytest.fail(f"the soak ran past {timeout} s:\n{out[-4000:]}{err[-2000:]}")
    assert proc.returncode == 0, out[-6000:] + err[-3000:]
    assert "soak: passed (0 failed checks)" in out, out[-4000:]
    for check in CHECKS:
        assert check in out, out[-4000:]
    assert "| NO |" not in out, out[-4000:]
    kills = [line for line in out.splitlines() if line.startswith("| consumer kills (SIGKILL) |")]
    assert kills and "threads 0, processes 0" not in kills[0], out[-4000:]
    return out


def test_soak_one_minute_on_sqlite():
    """A minute, a kill every 15 s (threads and processes in turn): the long soaks are
    `benchmarks/soak.py --minutes 10` and more, run by hand (docs/operations.md)."""
    out = _soak("--minutes", "1", "--kill-every", "15", timeout=200)
    assert "on sqlite" in out


def test_soak_on_postgres(pg_url):
    """A shorter run on PostgreSQL, on the fixture's fresh database."""
    out = _soak("--minutes", "0.8", "--kill-every", "15", "--db", "postgres", "--pg-url", pg_url, timeout=200)
    assert "on postgres" in out
