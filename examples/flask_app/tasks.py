"""The job the web app hands off: too slow for a request, fine in the background."""

from __future__ import annotations

import hashlib

from litequeue import LiteQueue, current_job

queue = LiteQueue("webshop")


@queue.task(queue="reports", retries=1)
def build_report(customer: str, rows: int) -> dict[str, object]:
    job = current_job()
    digest = hashlib.sha256()
    for i in range(1, rows + 1):
        digest.update(f"{customer}:{i}".encode())
        if job is not None and i % 100 == 0:
            job.progress(i, rows, f"row {i}")
    return {"customer": customer, "rows": rows, "checksum": digest.hexdigest()[:12]}
