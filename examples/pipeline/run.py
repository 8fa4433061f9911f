"""Send documents through the pipeline, one batch each, and print what came out.

    python run.py [--docs 3] [--pages 23] [--broken PAGE] [--prefix doc]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from tasks import app, fetch, open_document

from litequeue.ledger import queries

parser = argparse.ArgumentParser()
parser.add_argument("--docs", type=int, default=3)
parser.add_argument("--pages", type=int, default=23)
parser.add_argument("--broken", type=int, default=None, help="this page of each document fails")
parser.add_argument("--prefix", default="doc")
opts = parser.parse_args()

batches = []
for i in range(1, opts.docs + 1):
    doc = f"{opts.prefix}{i}"
    with open_document(doc) as batch:  # fetch is a member; the pages it finds join it
        app.enqueue(fetch.s(doc, opts.pages, opts.broken), tags=[f"doc:{doc}"])
    batches.append(batch)
print(f"enqueued {opts.docs} document(s) of {opts.pages} pages, one batch each")

# Serve the queues in this order; --burst: exit once everything (fan-out included) is done.
subprocess.run([sys.executable, "-m", "litequeue", "-q", "run-consumer", "tasks", "-w", "4",
                "-Q", "assemble,ocr,fetch", "--burst"], check=True)

db = app.storage.database
for batch in batches:
    b = batch.status()
    print(f"{b['name']}: {b['state']}, {b['succeeded']} of {b['total']} jobs succeeded ({b['percent']}%)")
    assembled = queries.get_job(db, b["on_complete"]["id"])["result"]
    missing = f", missing page(s) {assembled['missing']}" if assembled["missing"] else ""
    print(f"  assembled {assembled['doc']}: {assembled['pages']} pages{missing}")
    if b["on_failure"]["status"]:
        print(f"  report: {'; '.join(queries.get_job(db, b['on_failure']['id'])['result'])}")
