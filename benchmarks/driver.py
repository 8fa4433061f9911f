"""A warm producer for one system, driven by the harness over stdin/stdout.

``python driver.py TASKS_MODULE`` imports the system's tasks module (connections are
opened by a first enqueue before any timing), then answers one line per command:

* ``single N``: enqueue N jobs one at a time; prints the seconds taken;
* ``bulk N``: the module's bulk API (``enqueue_bulk``) for N jobs; prints the seconds;
* ``one``: prints ``time.time()`` taken just before enqueueing one job (pickup samples).
"""

from __future__ import annotations

import importlib
import sys
import time


def main() -> None:
    tasks = importlib.import_module(sys.argv[1])
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "single":
            enqueue = tasks.enqueue_one
            n = int(arg)
            t0 = time.perf_counter()
            for _ in range(n):
                enqueue()
            out.write(f"{time.perf_counter() - t0:.6f}\n")
        elif cmd == "bulk":
            n = int(arg)
            t0 = time.perf_counter()
            tasks.enqueue_bulk(n)
            out.write(f"{time.perf_counter() - t0:.6f}\n")
        elif cmd == "one":
            t0 = time.time()
            tasks.enqueue_one()
            out.write(f"{t0:.6f}\n")
        elif cmd == "quit":
            break
        else:
            out.write(f"error unknown command {cmd!r}\n")
        out.flush()


if __name__ == "__main__":
    main()
