"""Test support: run a real consumer's periodic clock ahead, so a test steps it to the next
minute instead of waiting for one.

A process started with :func:`stepped_clock_env` loads ``clock_site/sitecustomize.py`` at
start-up, which replaces ``litequeue.runtime.scheduler.wall_clock`` (the scheduler's one
clock seam) by one that adds the seconds written in the offset file, re-read on every pass.
"""

from __future__ import annotations

import os
from pathlib import Path

#: the file whose number (seconds) the consumers' periodic clock is ahead by
CLOCK_OFFSET_ENV = "LITEQUEUE_TEST_CLOCK_OFFSET_FILE"
#: the folder put on PYTHONPATH: its sitecustomize.py installs the stepped clock
SITE_DIR = Path(__file__).resolve().parent / "clock_site"


def stepped_clock_env(project_root: Path, offset_file: Path) -> dict[str, str]:
    """The environment of processes whose scheduler clock runs ``offset_file``'s seconds
    ahead (``project_root`` stays first on the path, as in every project process)."""
    return {CLOCK_OFFSET_ENV: str(offset_file), "PYTHONPATH": os.pathsep.join([str(project_root), str(SITE_DIR)])}
