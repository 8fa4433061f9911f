"""The benchmark still works (CI runs its --quick mode; no thresholds: this machine is
shared and noisy, so speed is judged from benchmarks/run.py's own report, not here)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_quick_benchmark_runs_and_reports(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick"],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| litequeue (full) |" in proc.stdout and "Raw-SQLite ceiling" in proc.stdout
    written = proc.stdout.strip().splitlines()[-1].split("written:")[-1].strip()
    report = json.loads((ROOT / written).read_text())
    assert report
