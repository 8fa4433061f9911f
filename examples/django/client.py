"""Place orders on the running shop (``manage.py runserver``): COUNT that go through, then
one whose payment is declined (its transaction rolls back: no order, no job).

    python client.py [COUNT]

The shop's address: http://127.0.0.1:$PORT (default 8000).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

BASE = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"


def post(fields: dict[str, str]) -> tuple[int, dict[str, object]]:
    data = urllib.parse.urlencode(fields).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(BASE + "/orders", data=data), timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_until_up(seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(BASE + "/admin/login/", timeout=2).close()
            return
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                sys.exit(f"no shop at {BASE}; start it with: python manage.py runserver")
            time.sleep(0.2)


wait_until_up()
for n in range(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
    status, body = post({"item": f"book {n}"})
    print(f"POST /orders: {status} order {body['order']}, job {body['job']}")
status, body = post({"item": "lamp", "card": "declined"})
print(f"POST /orders (card declined): {status} {body['error']}")
