"""A demo project for the status page: a real app, jobs in seven queues (failed ones with
long errors, a batch that finished with 2 of 62 failed, one of 300 still running), two long
jobs with progress, an open breaker, a stored schedule, a paused queue, and a real consumer
running. Used by the browser tests and ``make screenshots`` (scripts/screenshots.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TASKS = '''
import os, time
from litequeue import Breaker, LiteQueue, crontab, current_job

app = LiteQueue("shop")
HERE = os.path.dirname(os.path.abspath(__file__))

def gate(name):
    while not os.path.exists(os.path.join(HERE, name)):
        time.sleep(0.05)

@app.task(queue="mail")
def send_receipt(order_id, email):
    return f"sent to {email}"

@app.task(queue="payments")
def charge(order_id):
    raise RuntimeError(f"payment gateway timed out after 30 s while charging order {order_id}: "
                       "upstream returned 504 Gateway Timeout for POST /v2/charges (idempotency key "
                       f"ord-{order_id}-attempt-1); the card was not charged and the order stays open")

@app.task(queue="reports")
def build_report(kind):
    job = current_job()
    step = 0
    while not os.path.exists(os.path.join(HERE, "finish-reports")):
        step = min(step + 1, 199)
        job.progress(step, 200, f"{kind}: section {step}")
        time.sleep(0.5)
    return kind

@app.task(queue="ocr")
def ocr_page(n, slow=False):
    if slow:
        gate("go-ocr")
    if n in (13, 41):
        raise ValueError(f"page {n} is unreadable: the scan is blank")
    return f"text of page {n}"

@app.task(queue="images")
def resize(name):
    return name

@app.task(queue="webhooks", breaker=Breaker(failures=3, window="1h", cooldown="1h"))
def notify_crm(n):
    raise ConnectionError(f"crm.example.com refused the connection (webhook {n})")

@app.task(queue="newsletters")
def newsletter(n):
    return n

@app.periodic_task(crontab(minute="*/5"))
def heartbeat_report():
    return "ok"
'''

SEED = '''
import json
from tasks import app, send_receipt, charge, build_report, ocr_page, resize, notify_crm, newsletter
for i in range(120):
    send_receipt(i, f"customer{i}@example.com")
for i in range(40):
    resize(f"photo-{i}.jpg")
for i in range(18):
    charge(1000 + i)
for i in range(4):
    notify_crm(i)
with app.batch("scans acme") as b:
    ocr_page.map(range(62), batch=b)
print(json.dumps({"done_batch": b.id}))
'''

LATER = '''
import json
from tasks import app, build_report, ocr_page, notify_crm, newsletter
long_ids = [build_report("quarterly sales").id, build_report("inventory").id]
with app.batch("scans globex") as big:
    ocr_page.map([(i, True) for i in range(300)], batch=big)
for i in range(25):
    newsletter(i)
print(json.dumps({"running_batch": big.id, "long": long_ids}))
'''


class Demo:
    """A demo project in ``root``: its database, the ids worth looking at, its processes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db = root / "lq.db"
        self.ids: dict[str, Any] = {}
        self.procs: list[subprocess.Popen[str]] = []

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "LITEQUEUE_DB": str(self.db), "LITEQUEUE_APP": "tasks", "PYTHONPATH": str(self.root),
                "PYTHONUNBUFFERED": "1"}

    def run(self, *args: str, code: str | None = None) -> str:
        cmd = [sys.executable, "-c", code] if code is not None else [sys.executable, "-m", "litequeue", *args]
        out = subprocess.run(cmd, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=180)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:4])} exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
        return out.stdout

    def spawn(self, *args: str, log: str) -> subprocess.Popen[str]:
        out = open(self.root / log, "w")  # noqa: SIM115 - the child writes to it for its whole life
        proc = subprocess.Popen([sys.executable, "-m", "litequeue", *args], cwd=self.root, env=self.env,
                                stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.procs.append(proc)
        return proc

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """The first column of each row (a read-only connection)."""
        import sqlite3

        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            return [r[0] for r in conn.execute(sql, params).fetchall()]
        finally:
            conn.close()

    def count(self, status: str) -> int:
        return int(self.query("SELECT COUNT(*) FROM lq_job WHERE status = ?", (status,))[0])

    def wait(self, status: str, n: int, timeout: float = 90) -> None:
        end = time.monotonic() + timeout
        while self.count(status) < n:
            if time.monotonic() > end:
                raise RuntimeError(f"the demo never reached {n} {status} jobs")
            time.sleep(0.1)

    def stop(self) -> None:
        import signal

        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(10)


def build(root: Path) -> Demo:
    """Write the app, enqueue and run the demo's jobs, and leave one consumer running (on
    the long jobs and the running batch); returns the demo."""
    demo = Demo(root)
    (root / "tasks.py").write_text(TASKS)
    demo.ids.update(json.loads(demo.run(code=SEED).strip().splitlines()[-1]))
    demo.run("run-consumer", "tasks", "--burst", "-w", "4")
    demo.ids["failed"] = demo.query("SELECT id FROM lq_job WHERE status = 'failed' ORDER BY seq")
    demo.run("schedules", "add", "weekly-sales", "--cron", "0 8 * * 1", "--task", "build_report",
             "--args", '["weekly sales"]', "-q", "newsletters")
    demo.run("pause", "newsletters")
    demo.ids.update(json.loads(demo.run(code=LATER).strip().splitlines()[-1]))
    demo.spawn("run-consumer", "tasks", "-w", "6", log="consumer.log")
    demo.wait("running", 6)
    return demo
