"""A document-processing pipeline: fetch a document, fan out one OCR job per batch of
pages, fan in to one job that assembles the text.

    fetch(doc) ──┬─ ocr_batch(doc, pages 1-5)  ─┐
                 ├─ ocr_batch(doc, pages 6-10) ─┼─ assemble(doc, [texts...])
                 └─ ...                        ─┘
"""

from __future__ import annotations

import hashlib

from litequeue import LiteQueue, current_job
from litequeue.app import chord

app = LiteQueue("pipeline")
BATCH = 5


@app.task(queue="fetch")
def fetch(doc: str, pages: int) -> int:
    """Stands in for downloading a document; fans out one OCR job per batch of pages and
    one assemble job that runs once they have all finished (Huey's chord)."""
    batches = [list(range(first, min(first + BATCH, pages + 1))) for first in range(1, pages + 1, BATCH)]
    app.enqueue(chord([ocr_batch.s(doc, batch) for batch in batches], assemble.s(doc)))
    return len(batches)


@app.task(queue="ocr", retries=2, retry_delay=1)
def ocr_batch(doc: str, pages: list[int]) -> list[str]:
    """Stands in for OCR; reports progress page by page (`litequeue jobs show ID`)."""
    job = current_job()
    texts = []
    for done, page in enumerate(pages, start=1):
        digest = hashlib.sha256(f"{doc}:{page}".encode()).hexdigest()[:8]
        texts.append(f"[{doc} p{page} {digest}]")
        if job is not None:
            job.progress(done, len(pages), f"{doc} page {page}")
    return texts


@app.task(queue="assemble")
def assemble(doc: str, batches: list[list[str]]) -> dict[str, object]:
    """Runs once, after every batch: gets their results in order."""
    pages = [text for batch in batches for text in batch]
    return {"doc": doc, "pages": len(pages), "first": pages[0], "last": pages[-1]}
