"""Every example's README, run as written: each fenced ``sh`` block of ``examples/*/README.md``
runs in bash (``set -euo pipefail``) from a temp copy of the example, with ``LITEQUEUE_DB``
in a temp folder and this environment's ``python``, ``litequeue`` and ``flask`` first on
PATH. Background processes a block starts (``... &``) are killed at the end with the
block's whole process group."""

from __future__ import annotations

import datetime as dt
import importlib
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, wait_for

EXAMPLES = ROOT / "examples"
BLOCK = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)


def shell_blocks(readme: Path) -> list[str]:
    """The fenced ``sh`` blocks of a README (``text`` blocks are sample output)."""
    return [body for lang, body in BLOCK.findall(readme.read_text()) if lang == "sh"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Example:
    """A temp copy of one example, its own database, and its README blocks."""

    def __init__(self, name: str, tmp: Path) -> None:
        self.name = name
        self.dir = tmp / name
        shutil.copytree(EXAMPLES / name, self.dir, ignore=shutil.ignore_patterns("__pycache__", "*.db*"))
        (tmp / "data").mkdir()
        self.db = tmp / "data" / "litequeue.db"
        self.env = dict(os.environ)
        self.env.pop("PYTHONPATH", None)  # the example must work from its own folder alone
        self.env.update(LITEQUEUE_DB=str(self.db), PYTHONUNBUFFERED="1", FLASK_RUN_PORT=str(free_port()),
                        PORT=str(free_port()),
                        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        self.procs: list[subprocess.Popen[str]] = []

    def run_block(self, block: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        # Output goes to files, not pipes: a background job left running must not keep the
        # block "open" after bash has exited.
        n = len(self.procs)
        out_path, err_path = self.dir.parent / f"block{n}.out", self.dir.parent / f"block{n}.err"
        with open(out_path, "w") as out, open(err_path, "w") as err:
            proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", block], cwd=self.dir, env=self.env,
                                    stdout=out, stderr=err, text=True, start_new_session=True)
        self.procs.append(proc)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name}: block timed out:\n{block}\n{out_path.read_text()}\n"
                                 f"{err_path.read_text()}") from None
        finally:
            self.kill()
        result = subprocess.CompletedProcess(proc.args, proc.returncode, out_path.read_text(), err_path.read_text())
        assert proc.returncode == 0, (f"{self.name}: block exited {proc.returncode}:\n{block}\n"
                                      f"{result.stdout}\n{result.stderr}")
        return result

    def run_readme(self) -> list[str]:
        blocks = shell_blocks(self.dir / "README.md")
        assert blocks, f"{self.name}/README.md has no sh block to run"
        return [self.run_block(b).stdout for b in blocks]

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def kill(self) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the block's background jobs too
            except ProcessLookupError:
                pass
            if proc.returncode is None:
                proc.wait(10)


@pytest.fixture
def example(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Example]:
    ex = Example(request.param, tmp_path)
    yield ex
    ex.kill()


def test_every_example_has_a_readme_test() -> None:
    names = sorted(p.parent.name for p in EXAMPLES.glob("*/README.md"))
    tested = {"hello", "pipeline", "periodic", "flask_app", "inbox", "fastapi_app", "django"}
    assert set(names) <= tested, f"examples without a README test here: {set(names) - tested}"


@pytest.mark.parametrize("example", ["hello"], indirect=True)
def test_hello_readme(example: Example) -> None:
    first, cli = example.run_readme()
    assert "enqueued 3 jobs" in first
    assert "add(2, 3) = 5 " in first and "add(40, 2) = 42 " in first and "shout('hello') = 'HELLO!'" in first
    listed = [line for line in cli.splitlines() if "  succeeded " in line]
    assert len(listed) == 3  # two adds from run.py, one from `litequeue enqueue`
    assert "all queues empty; 4 succeeded in the last hour" in cli
    assert dict(example.query("SELECT status, COUNT(*) FROM lq_job GROUP BY status")) == {"succeeded": 4}


@pytest.mark.parametrize("example", ["pipeline"], indirect=True)
def test_pipeline_readme(example: Example) -> None:
    first, listing, broken, alone = example.run_readme()
    for doc in ("doc1", "doc2", "doc3"):
        assert f"ocr {doc}: succeeded, 24 of 24 jobs succeeded (100.0%)\n  assembled {doc}: 23 pages\n" in first
    assert listing.count("succeeded") >= 3 and "ocr doc1" in listing
    assert ("ocr scan1: failed, 12 of 13 jobs succeeded (100.0%)\n  assembled scan1: 11 pages, missing page(s) [5]\n"
            "  report: ValueError: scan1 page 5: unreadable scan") in broken
    assert alone.strip().endswith("ocr report.pdf succeeded 12 of 12")
    tasks = dict(example.query("SELECT task, COUNT(*) FROM lq_job GROUP BY task"))
    # 3 documents of 23 pages, one of 12 with a broken page, one of 12 from the command line
    assert tasks == {"fetch": 5, "ocr_page": 3 * 23 + 12 + 12, "assemble": 5, "report": 1}
    assert example.query("SELECT COUNT(*) FROM lq_job WHERE status != 'succeeded'")[0][0] == 1
    # every job but the stand-alone fetch is a member of its document's batch, counted once
    batches = example.query("SELECT name, total, succeeded, failed FROM lq_batch ORDER BY created_at")
    assert batches == [("ocr doc1", 24, 24, 0), ("ocr doc2", 24, 24, 0), ("ocr doc3", 24, 24, 0),
                       ("ocr scan1", 13, 12, 1), ("ocr report.pdf", 12, 12, 0)]
    members = example.query("SELECT b.name, COUNT(*) FROM lq_job j JOIN lq_batch b ON b.id = j.batch_id "
                            "GROUP BY b.name ORDER BY b.name")
    assert members == [("ocr doc1", 24), ("ocr doc2", 24), ("ocr doc3", 24), ("ocr report.pdf", 12),
                       ("ocr scan1", 13)]
    result = example.query("SELECT result FROM lq_job WHERE task = 'assemble' AND args LIKE '%report.pdf%'")
    assert '"pages": 12' in result[0][0]


@pytest.mark.parametrize("example", ["periodic"], indirect=True)
def test_periodic_readme(example: Example) -> None:
    first, background = example.run_readme()
    lines = first.splitlines()
    assert lines[:3] == [
        "2026-01-05 09:00 (Monday): fired heartbeat, quarter_hourly_check, morning_report",
        "2026-01-05 09:00 (Monday): fired nothing (already fired, or not due)",
        "2026-01-05 09:01 (Monday): fired heartbeat",
    ]
    runs = example.query("SELECT r.slot, j.task, j.status FROM lq_periodic_run r JOIN lq_job j "
                         "ON j.id = r.job_id WHERE r.slot LIKE '2026-01-05%' ORDER BY r.slot, j.task")
    assert runs == [("2026-01-05T09:00", "heartbeat", "succeeded"),
                    ("2026-01-05T09:00", "morning_report", "succeeded"),
                    ("2026-01-05T09:00", "quarter_hourly_check", "succeeded"),
                    ("2026-01-05T09:01", "heartbeat", "succeeded")]
    assert "heartbeat" in background and "succeeded" in background


@pytest.mark.parametrize("example", ["periodic"], indirect=True)
def test_periodic_consumer_fires_on_the_clock(example: Example) -> None:
    """A real consumer on an empty database fires the every-minute task for the current minute."""
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None, second=0, microsecond=0)
    example.run_block("litequeue run-consumer tasks -w 2 &\npython runs.py --wait 1\n", timeout=90)
    runs = example.query("SELECT r.slot, j.task, j.status FROM lq_periodic_run r JOIN lq_job j ON j.id = r.job_id")
    slots = {started.isoformat(timespec="minutes"), (started + dt.timedelta(minutes=1)).isoformat(timespec="minutes")}
    assert all(slot in slots for slot, _, _ in runs), runs
    assert ("heartbeat", "succeeded") in {(task, status) for _, task, status in runs}, runs


@pytest.mark.parametrize("example", ["fastapi_app"], indirect=True)
def test_fastapi_app_readme(example: Example) -> None:
    (out,) = example.run_readme()
    assert "enqueued 5 welcome mails" in out
    assert out.count(": succeeded welcome mail sent to ") == 5, out
    assert dict(example.query("SELECT status, COUNT(*) FROM lq_job GROUP BY status")) == {"succeeded": 5}


@pytest.mark.parametrize("example", ["flask_app"], indirect=True)
def test_flask_app_readme(example: Example) -> None:
    (out,) = example.run_readme()
    assert "POST /reports x3: enqueued " in out
    assert out.count(": succeeded {") == 3, out
    assert dict(example.query("SELECT status, COUNT(*) FROM lq_job GROUP BY status")) == {"succeeded": 3}


@pytest.mark.parametrize("example", ["flask_app"], indirect=True)
def test_flask_app_with_test_client_and_a_real_consumer(example: Example,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITEQUEUE_DB", str(example.db))
    monkeypatch.syspath_prepend(str(example.dir))
    for name in ("app", "tasks"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    web = importlib.import_module("app")
    try:
        client = web.app.test_client()
        posted = client.post("/reports", json={"customer": "acme", "rows": 3000})
        assert posted.status_code == 202
        job_id = posted.get_json()["id"]
        assert posted.get_json()["status_url"] == f"/reports/{job_id}"
        assert client.get(f"/reports/{job_id}").get_json()["status"] == "queued"
        form = client.post("/reports", data={"customer": "zeta", "rows": "200"})
        assert form.status_code == 303 and form.headers["Location"].startswith("/reports/")
        assert client.post("/reports", data={"rows": "many"}).status_code == 400
        assert client.get("/reports/no-such-job").status_code == 404

        consumer = subprocess.Popen([sys.executable, "-m", "litequeue", "run-consumer", "tasks", "-w", "2"],
                                    cwd=example.dir, env=example.env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
        example.procs.append(consumer)

        def done() -> dict[str, Any] | None:
            job = client.get(f"/reports/{job_id}").get_json()
            return job if job["status"] == "succeeded" else None

        job = wait_for(done, timeout=30, what="the report job to succeed")
        assert job["result"]["customer"] == "acme" and job["result"]["rows"] == 3000
        assert job["progress"]["done"] == job["progress"]["total"] == 3000
        assert job["progress"]["percent"] == 100.0
        assert job_id[:8] in client.get("/").get_data(as_text=True)
    finally:
        web.queue.storage.database.close()
        sys.modules.pop("app", None)
        sys.modules.pop("tasks", None)


@pytest.mark.parametrize("example", ["django"], indirect=True)
def test_django_readme(example: Example) -> None:
    """The shop's README as written, then Django's own runner on its tests (a real
    ``manage.py run_consumer --burst``, a rolled-back view, the page for staff only)."""
    example.env["SHOP_DB"] = str(example.db)  # the project's one file: Django's tables and the queue
    first, tests = example.run_readme()
    assert first.count("POST /orders: 201 order ") == 3, first
    assert "POST /orders (card declined): 402 payment declined: nothing was ordered" in first
    assert first.count("  succeeded default     send_receipt") == 3, first
    assert dict(example.query("SELECT status, COUNT(*) FROM lq_job GROUP BY status")) == {"succeeded": 3}
    assert example.query("SELECT COUNT(*), SUM(receipt_sent) FROM shop_order") == [(3, 3)]
    assert example.query("SELECT COUNT(*) FROM lq_attempt") == [(3,)]
    log = (example.dir.parent / "block1.err").read_text()
    assert "Ran 5 tests" in log and "\nOK\n" in log, log
