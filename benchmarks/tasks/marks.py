"""What every benchmark task does: append the time it ran to ``$BENCH_MARKS``.

One fixed-width line per job (``%.6f\\n``, 18 bytes) through an ``O_APPEND`` descriptor,
so lines from many threads and processes never interleave and the harness counts jobs
from the file size alone. The cost (one small ``write``) is the same for every system.

``$BENCH_JOB`` picks what the job does besides (``run.py --job``), the same for every system:

* ``noop`` (default): nothing;
* ``io``: opens ``$BENCH_IO``, appends a line and closes it (a job that does a little I/O);
* ``cpu``: a pure-Python loop of about 20 ms (CPU-bound jobs, for process workers).
"""

from __future__ import annotations

import os
import time

LINE = 18
_fd: int | None = None
JOB = os.environ.get("BENCH_JOB", "noop")
CPU_LOOPS = int(os.environ.get("BENCH_CPU_LOOPS", "650000"))


def mark() -> None:
    global _fd
    if _fd is None:
        _fd = os.open(os.environ["BENCH_MARKS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, b"%.6f\n" % time.time())
    if JOB == "io":
        with open(os.environ["BENCH_IO"], "a") as fh:
            fh.write("one line of output\n")
    elif JOB == "cpu":
        total = 0
        for i in range(CPU_LOOPS):
            total += i
