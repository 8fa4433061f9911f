"""Sign up a few users through the running API and follow each welcome-mail job.

    python client.py [COUNT]

The API's address: http://127.0.0.1:$PORT (default 8000).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request

BASE = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"


def call(method: str, path: str, body: object = None) -> dict[str, object]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


deadline = time.monotonic() + 30
while True:
    try:
        call("GET", "/")
        break
    except (urllib.error.URLError, ConnectionError):
        if time.monotonic() > deadline:
            sys.exit(f"no API at {BASE}; start it with: uvicorn app:app --port 8000")
        time.sleep(0.2)

count = int(sys.argv[1]) if len(sys.argv) > 1 else 3
ids = [str(call("POST", "/signup", {"email": f"user{i}@example.com"})["id"]) for i in range(count)]
ids += [str(i) for i in call("POST", "/signups", ["team@example.com", "ops@example.com"])["ids"]]  # type: ignore[union-attr]
print(f"enqueued {len(ids)} welcome mails")
deadline = time.monotonic() + 60
for job_id in ids:
    while (job := call("GET", f"/jobs/{job_id}"))["status"] not in ("succeeded", "failed"):
        if time.monotonic() > deadline:
            sys.exit(f"job {job_id} is still {job['status']}; is a consumer running?")
        time.sleep(0.1)
    print(f"{job_id[:8]}: {job['status']} {job['result']}")
