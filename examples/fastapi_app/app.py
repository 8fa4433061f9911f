"""A FastAPI app whose request handler enqueues with ``await task.aenqueue(...)``.

    uvicorn app:app --port 8000

The enqueue runs in a worker thread: while the database makes it wait (another writer
holds the SQLite file, a server reconnects), the event loop keeps serving other requests.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from tasks import queue, send_welcome

from litequeue.ledger import queries

app = FastAPI(title="signups")


class Signup(BaseModel):
    email: str


@app.get("/")
async def index() -> dict[str, str]:
    return {"hello": "POST /signup with {\"email\": ...}"}


@app.post("/signup", status_code=202)
async def signup(body: Signup) -> dict[str, str]:
    result = await send_welcome.aenqueue(body.email)
    return {"id": result.id, "status_url": f"/jobs/{result.id}"}


@app.post("/signups", status_code=202)
async def signups(emails: list[str]) -> dict[str, list[str]]:
    """Many at once: one transaction, all of them or none."""
    return {"ids": await queue.aenqueue_many([send_welcome.s(e) for e in emails])}


@app.get("/jobs/{job_id}")
async def job(job_id: str) -> dict[str, Any]:
    found = await asyncio.to_thread(queries.get_job, queue.storage.database, job_id)
    if found is None:
        raise HTTPException(404, f"no job {job_id}")
    return {key: found.get(key) for key in ("id", "status", "result", "error")}
