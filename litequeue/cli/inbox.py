"""litequeue CLI: inbox commands."""

from __future__ import annotations
