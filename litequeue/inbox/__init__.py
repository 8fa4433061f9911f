"""The watched inbox: files dropped into a folder become jobs (see ``litequeue watch-inbox``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def observers() -> list[Callable[[Sequence[Any]], None]]:
    """Observers every consumer runs after an ack commits (the inbox moves files here)."""
    return []
