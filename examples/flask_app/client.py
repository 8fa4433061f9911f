"""Ask the running web app for reports and follow each until it is done.

    python client.py [COUNT]

The app's address: http://127.0.0.1:$FLASK_RUN_PORT (the variable `flask run` reads;
default 5000).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request

BASE = f"http://127.0.0.1:{os.environ.get('FLASK_RUN_PORT', '5000')}"


def call(method: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def wait_until_up(seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(BASE + "/", timeout=2).close()
            return
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                sys.exit(f"no web app at {BASE}; start it with: flask --app app run")
            time.sleep(0.2)


wait_until_up()
count = int(sys.argv[1]) if len(sys.argv) > 1 else 3
ids = [str(call("POST", "/reports", {"customer": f"customer{i}", "rows": 5000})["id"]) for i in range(count)]
print(f"POST /reports x{count}: enqueued {', '.join(i[:8] for i in ids)}")
deadline = time.monotonic() + 60
for job_id in ids:
    while True:
        job = call("GET", f"/reports/{job_id}")
        if job["status"] in ("succeeded", "failed", "cancelled", "expired"):
            break
        if time.monotonic() > deadline:
            sys.exit(f"job {job_id} is still {job['status']}; is a consumer running?")
        time.sleep(0.1)
    print(f"GET /reports/{job_id[:8]}: {job['status']} {json.dumps(job['result'])}")
