"""litequeue CLI: ops commands."""

from __future__ import annotations
