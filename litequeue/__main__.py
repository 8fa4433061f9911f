"""``python -m litequeue``: the same command as ``litequeue``."""

from litequeue.cli import run

run()
