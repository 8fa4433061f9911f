"""litequeue CLI: web commands."""

from __future__ import annotations
