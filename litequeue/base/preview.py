"""JSON previews of arguments and results: secrets redacted, long values cut, never pickled."""

from __future__ import annotations

import json
import re
from typing import Any

from litequeue.base import defaults

SECRET_KEY = re.compile(
    r"pass(word|wd)?|secret|token|api[_-]?key|auth|credential|private[_-]?key|cookie|session|pin$",
    re.IGNORECASE,
)
SECRET_VALUE = re.compile(
    r"^(sk|pk|rk)[-_][A-Za-z0-9_-]{12,}|^gh[pousr]_[A-Za-z0-9]{20,}|^xox[abpr]-|"
    r"^eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.|^AKIA[0-9A-Z]{16}$|"
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----"
)
REDACTED = "***"


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…(+{len(text) - limit} chars)"


def _clean(value: Any, depth: int = 0) -> Any:
    limit = defaults.PREVIEW_MAX_CHARS
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return REDACTED if SECRET_VALUE.search(value) else _cut(value, limit)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if depth > 4:
        return "…"
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for i, (key, item) in enumerate(value.items()):
            if i >= defaults.PREVIEW_MAX_ITEMS:
                out["…"] = f"+{len(value) - i} more"
                break
            name = str(key)
            out[name] = REDACTED if SECRET_KEY.search(name) else _clean(item, depth + 1)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        cleaned = [_clean(v, depth + 1) for v in items[: defaults.PREVIEW_MAX_ITEMS]]
        if len(items) > defaults.PREVIEW_MAX_ITEMS:
            cleaned.append(f"… +{len(items) - defaults.PREVIEW_MAX_ITEMS} more")
        return cleaned
    return _cut(f"<{type(value).__name__}: {value!r}>", limit)


_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode
_PLAIN = (int, float, bool, type(None))


def _is_plain(value: Any) -> bool:
    """Numbers and short, harmless strings need no cleaning (the common, fast case)."""
    if isinstance(value, _PLAIN):
        return True
    return isinstance(value, str) and len(value) <= 64 and not SECRET_VALUE.search(value)


def preview(value: Any) -> str:
    """A JSON text safe to show anywhere: redacted, cut, and never a pickle."""
    try:
        if isinstance(value, list) and len(value) <= defaults.PREVIEW_MAX_ITEMS and all(map(_is_plain, value)):
            return _encode(value)
        if isinstance(value, dict) and not value:
            return "{}"
        return _encode(_clean(value))
    except Exception:  # noqa: BLE001 - a preview must never fail an enqueue
        return json.dumps(f"<unpreviewable {type(value).__name__}>")
