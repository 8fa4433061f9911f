"""Send documents through the pipeline and print what came out.

    python run.py [DOCUMENTS] [PAGES]
"""

from __future__ import annotations

import subprocess
import sys

from tasks import app, fetch

docs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
pages = int(sys.argv[2]) if len(sys.argv) > 2 else 23

for i in range(1, docs + 1):
    fetch(f"doc{i}", pages)
print(f"enqueued {docs} documents of {pages} pages")

# Serve the queues in this order; --burst: exit once everything (fan-out included) is done.
subprocess.run([sys.executable, "-m", "litequeue", "-q", "run-consumer", "tasks", "-w", "4",
                "-Q", "assemble,ocr,fetch", "--burst"], check=True)

from litequeue.ledger import queries  # noqa: E402  (reads the ledger, never your code)

for job in queries.list_jobs(app.storage.database, task="assemble", limit=docs):
    print(f"assembled {job['result']['doc']}: {job['result']['pages']} pages, status {job['status']}")
ocr = queries.list_jobs(app.storage.database, task="ocr_batch", limit=1)[0]
print(f"an OCR batch reported progress {ocr['progress']['done']:g}/{ocr['progress']['total']:g} "
      f"({ocr['progress']['percent']}%): {ocr['progress']['message']}")
