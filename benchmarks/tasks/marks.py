"""What every benchmark task does: append the time it ran to ``$BENCH_MARKS``.

One fixed-width line per job (``%.6f\\n``, 18 bytes) through an ``O_APPEND`` descriptor,
so lines from many threads and processes never interleave and the harness counts jobs
from the file size alone. The cost (one small ``write``) is the same for every system.
"""

from __future__ import annotations

import os
import time

LINE = 18
_fd: int | None = None


def mark() -> None:
    global _fd
    if _fd is None:
        _fd = os.open(os.environ["BENCH_MARKS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, b"%.6f\n" % time.time())
