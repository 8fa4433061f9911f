"""The Python snippets of the integration sections of docs/tasks-and-workflows.md ("Enqueue in
your own transaction", "Flask", "Django", "Async producers") run as written, each in a fresh folder."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOC = ROOT / "docs" / "tasks-and-workflows.md"
SECTIONS = ("Enqueue in your own transaction", "Flask", "Django", "Async producers")
BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def snippets() -> list[tuple[str, int, str]]:
    text = DOC.read_text()
    found = []
    for title in SECTIONS:
        start = text.index(f"\n## {title}\n")
        end = text.find("\n## ", start + 1)
        for n, code in enumerate(BLOCK.findall(text[start:end if end > 0 else None])):
            found.append((title, n, code))
    return found


def test_each_section_has_a_snippet() -> None:
    assert {title for title, _, _ in snippets()} == set(SECTIONS)


@pytest.mark.parametrize(("title", "n", "code"), snippets(), ids=lambda v: str(v)[:24])
def test_snippet_runs(title: str, n: int, code: str, tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PATH": str(Path(sys.executable).parent), "LITEQUEUE_DB": str(tmp_path / "lq.db")})
    assert run.returncode == 0, f"{title} #{n}:\n{run.stdout}\n{run.stderr}"
    if title == "Enqueue in your own transaction" and n == 0:
        db = sqlite3.connect(tmp_path / "shop.db")
        assert db.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 1
        assert db.execute("SELECT task, status FROM lq_job").fetchall() == [("send_receipt", "queued")]
    if title == "Django":  # the committed order and its job; the declined one left neither
        db = sqlite3.connect(tmp_path / "shop.sqlite3")
        assert db.execute("SELECT note FROM orders").fetchall() == [("book",)]
        assert db.execute("SELECT task, queue, status FROM lq_job").fetchall() == [("send_receipt", "mail", "queued")]
    if title == "Async producers":
        assert run.stdout.count("-") >= 4  # the ids it printed
