"""Print the periodic runs the ledger recorded; ``--wait N`` first waits (up to a minute)
until N runs have succeeded, e.g. while a consumer runs in the background."""

from __future__ import annotations

import sys
import time

from tasks import app

want = int(sys.argv[sys.argv.index("--wait") + 1]) if "--wait" in sys.argv else 0
QUERY = ("SELECT r.slot, j.task, j.status FROM lq_periodic_run r JOIN lq_job j ON j.id = r.job_id "
         "ORDER BY r.slot, j.task")
deadline = time.monotonic() + 60
while True:
    rows = app.storage.sql(QUERY).fetchall()
    if sum(status == "succeeded" for _, _, status in rows) >= want or time.monotonic() > deadline:
        break
    time.sleep(0.2)
for slot, task, status in rows:
    print(f"{slot}  {task:<22}{status}")
if sum(status == "succeeded" for _, _, status in rows) < want:
    sys.exit(f"fewer than {want} periodic runs succeeded within a minute; is a consumer running?")
