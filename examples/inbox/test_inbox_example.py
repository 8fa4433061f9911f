"""Runs this example's README as written: each ``sh`` block in bash from a temp copy of the
folder, with its own database and this environment's ``litequeue`` first on PATH."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BLOCK = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)


def test_readme_runs_as_written(tmp_path: Path) -> None:
    folder = tmp_path / "inbox-example"
    shutil.copytree(HERE, folder, ignore=shutil.ignore_patterns("__pycache__", "*.db*", "inbox", "test_*.py"))
    env = dict(os.environ, LITEQUEUE_DB=str(tmp_path / "litequeue.db"), PYTHONUNBUFFERED="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("PYTHONPATH", None)  # the example works from its own folder alone
    blocks = [body for lang, body in BLOCK.findall((folder / "README.md").read_text()) if lang == "sh"]
    assert len(blocks) == 1
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", blocks[0]], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120, start_new_session=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "took 2 file(s)" in out
    assert "failed: ValueError: could not convert string to float: 'oops'" in out
    assert "1 file(s) match no rule: notes.doc" in out
    inbox = folder / "inbox"
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["greeting.txt", "orders.csv"]
    assert (inbox / "done" / "orders.csv").read_text() == "id,total\n1,9.50\n2,12.00\n"
    assert (inbox / "notes.doc").exists()
    assert [p.name for p in (inbox / "failed").iterdir()] == ["orders.csv.error.txt"]  # kept as a record
