"""litequeue CLI: queue control and retention commands (pause, resume, purge, prune)."""

from __future__ import annotations
