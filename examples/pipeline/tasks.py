"""A document pipeline: fetch a document, fan out one OCR job per page as the pages are
found, fan in to one job that assembles the text; a report if any page failed.

    fetch(doc) ──┬─ ocr_page(doc, 1) ─┐
      (adds each ├─ ocr_page(doc, 2) ─┼─ assemble(batch_id, doc)   once, after every page
       page it   └─ ...              ─┘  report(batch_id)          once, if a page failed
       finds)
Every job of a document is in one batch (``litequeue batches list``) and tagged
``doc:<name>``.
"""

from __future__ import annotations

import hashlib

from litequeue import LiteQueue, current_job
from litequeue.ledger import queries

app = LiteQueue("pipeline")


def open_document(doc: str) -> object:
    """The batch of one document: assemble runs once every page is done, report if one failed."""
    return app.batch(f"ocr {doc}", on_complete=assemble.s(doc), on_failure=report)


@app.task(queue="fetch")
def fetch(doc: str, pages: int, broken: int | None = None) -> int:
    """Stands in for downloading a document: adds one OCR job per page it finds to the
    batch it runs in (written with this job's ack: a crash never adds a page twice)."""
    job = current_job()
    batch = job.batch if job is not None else None
    if batch is None:  # enqueued on its own (`litequeue enqueue fetch ...`): open the batch here
        with open_document(doc) as batch:
            _add_pages(batch, doc, pages, broken)
    else:
        _add_pages(batch, doc, pages, broken)
    return pages


def _add_pages(batch: object, doc: str, pages: int, broken: int | None) -> None:
    for n in range(1, pages + 1):
        batch.add(ocr_page.s(doc, n, n == broken).with_tags(f"doc:{doc}"))  # type: ignore[attr-defined]


@app.task(queue="ocr", retries=1, retry_delay=0)
def ocr_page(doc: str, page: int, unreadable: bool = False) -> str:
    """Stands in for OCR of one page."""
    if unreadable:
        raise ValueError(f"{doc} page {page}: unreadable scan")
    digest = hashlib.sha256(f"{doc}:{page}".encode()).hexdigest()[:8]
    return f"[{doc} p{page} {digest}]"


@app.task(queue="assemble")
def assemble(batch_id: str, doc: str) -> dict[str, object]:
    """Runs once, after every page: reads their results in order (None: a page that failed)."""
    results = app.batch_results(batch_id)  # every member's, in enqueue order
    members = queries.batch_members(app.storage.database, batch_id)
    texts = [text for m, text in zip(members, results, strict=True) if m["task"] == "ocr_page"]
    missing = [n for n, text in enumerate(texts, start=1) if text is None]
    found = [t for t in texts if t is not None]
    return {"doc": doc, "pages": len(found), "missing": missing, "first": found[0] if found else None}


@app.task(queue="assemble")
def report(batch_id: str) -> list[str]:
    """Runs once if any job of the batch did not succeed: what went wrong."""
    return [m["error"] for m in queries.batch_members(app.storage.database, batch_id)
            if m["status"] != "succeeded"]
