"""Keeping a database password out of what is shown: settings, messages, log lines.

A database URL may carry a password (``postgresql://user:pw@host/db`` or ``?password=``);
every place that prints a URL or an error about one passes it through here first.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any


def redact(value: Any) -> Any:
    """A setting as it may be shown: a URL's password replaced by ``***``."""
    if isinstance(value, str) and "://" in value and "@" in value:
        scheme, _, rest = value.partition("://")
        creds, _, host = rest.rpartition("@")
        if ":" in creds:
            value = f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    if isinstance(value, str) and "://" in value and "password=" in value:
        value = re.sub(r"([?&]password=)[^&#]*", r"\1***", value)
    return value


def url_password(url: str) -> str | None:
    """The password written in a database URL, if any (to keep it out of messages)."""
    try:
        parsed = urllib.parse.urlparse(url)
    except ValueError:
        return None
    found = parsed.password or urllib.parse.parse_qs(parsed.query).get("password", [None])[0]
    return found or None


def redact_text(text: str, url: str) -> str:
    """``text`` with the URL's password (as written and decoded) replaced by ``***``."""
    secret = url_password(url)
    for form in {secret, urllib.parse.unquote(secret or "")} - {None, ""}:
        text = text.replace(form, "***")  # type: ignore[arg-type]
    return text
