"""What the status page is started with, and the rules for where it may listen."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from litequeue.base.errors import ConfigurationError
from litequeue.store.database import database_target

if TYPE_CHECKING:
    from litequeue.app import LiteQueue

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


@dataclass
class WebSettings:
    """Settings of one status page.

    ``db``: a SQLite path or database URL (default ``$LITEQUEUE_DB``, else ``./litequeue.db``).
    ``password``: when set, every page but ``/livez`` asks for HTTP Basic auth.
    ``read_only``: no action is shown or accepted. ``app``: the user's LiteQueue, only to
    show each periodic task's next run and to build the job a schedule's Run now enqueues
    (the page never runs or unpickles user code).
    ``host``: the address served; on a loopback address only loopback ``Host`` headers are
    answered (so a DNS-rebinding page cannot read it).
    """

    db: str | None = None
    password: str | None = None
    read_only: bool = False
    app: LiteQueue | None = None
    host: str = "127.0.0.1"
    refresh_seconds: float = 3.0
    page_size: int = 50
    secret_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def __post_init__(self) -> None:
        self.db = database_target(self.db)


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, password: str | None) -> None:
    """Refuse to listen beyond this machine without a password."""
    if not is_loopback(host) and not password:
        raise ConfigurationError(
            f"refusing to serve the status page on {host} without a password: pass --password-file FILE "
            "(or set LITEQUEUE_WEB_PASSWORD_FILE), or use --host 127.0.0.1")


def read_password_file(path: str | os.PathLike[str]) -> str:
    """The password in ``path`` (its first line, without the line break)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the password file {path}: {exc.strerror}; "
                                 "pass a readable file to --password-file") from None
    lines = text.splitlines()
    password = lines[0].strip() if lines else ""
    if not password:
        raise ConfigurationError(f"the password file {path} is empty; write the password on its first line")
    return password
