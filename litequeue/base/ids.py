"""Job ids: the one generator every job gets its id from (enqueue, retry, inbox, periodic)."""

from __future__ import annotations

import os
import time
import uuid


def new_job_id() -> str:
    """A UUID version 7: 48 bits of milliseconds, then random bits.

    Job ids are keys of several indexes; ids that grow with time are appended at the end
    of those indexes instead of landing on random pages, so each commit writes (and
    fsyncs) far fewer pages than with random uuid4 ids, and a list sorted by id is in
    enqueue order."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))
