"""The job the API hands off: a welcome mail, sent by a consumer, not by the request."""

from __future__ import annotations

from litequeue import LiteQueue

queue = LiteQueue("signups")


@queue.task(queue="mail", retries=2, retry_delay=5)
async def send_welcome(email: str) -> str:
    # a real task would await an SMTP or HTTP client here
    return f"welcome mail sent to {email}"
