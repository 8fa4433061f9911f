"""systemd units for litequeue, filled in with one installation's paths.

Four units: ``litequeue-consumer@.service`` (a template: one consumer per queue set,
the instance name being the queue, e.g. ``litequeue-consumer@mail``), the inbox watcher,
the status page, and ``litequeue.target`` grouping them. The files in the repository's
``systemd/`` folder are :func:`render` with the defaults; ``litequeue systemd --print``
renders them for the running installation.

Why these settings:

* ``Type=notify`` + ``WatchdogSec``: systemd knows the consumer is up only once it took
  its lock and registered, and restarts one whose supervisor stopped ticking.
* ``KillMode=mixed``: SIGTERM reaches the main process only (it stops gracefully and its
  process workers ignore SIGTERM, dying with it); whatever is left after
  ``TimeoutStopSec`` is SIGKILLed. ``TimeoutStopSec`` is the shutdown timeout plus a margin,
  so a graceful stop is never cut short.
* ``Restart=on-failure`` with ``RestartPreventExitStatus=2``: litequeue exits 2 on a usage
  or configuration error, which a restart cannot fix, so there is no restart loop.
* Hardening that leaves task code working: ``ProtectSystem=strict`` with the database
  folder and inbox writable, ``PrivateTmp``, ``NoNewPrivileges``, kernel and cgroup
  protection. Not ``MemoryDenyWriteExecute`` (breaks ctypes callbacks and JITs), not
  ``PrivateDevices`` (GPUs), not a system-call or address-family filter (task code may
  need anything).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from litequeue.base import defaults
from litequeue.store.database import is_url, sqlite_path

CONSUMER = "litequeue-consumer@.service"
INBOX = "litequeue-inbox.service"
WEB = "litequeue-web.service"
TARGET = "litequeue.target"
UNIT_NAMES = (CONSUMER, INBOX, WEB, TARGET)
ENV_FILE = "/etc/litequeue/litequeue.env"
#: Exit status of usage and configuration errors (see ``litequeue.cli``).
EXIT_CONFIG = 2
WATCHDOG_SEC = 30
#: Homes are hidden from services (``ProtectHome=yes``) unless something lives there.
HOME_ROOTS = ("/home", "/root", "/run/user")
TMP_ROOTS = ("/tmp", "/var/tmp")


def litequeue_command() -> str:
    """How to run this installation's ``litequeue``: the script beside ``sys.executable``
    (a venv's bin folder; not resolved, so the venv is kept), else ``python -m litequeue``."""
    script = Path(sys.executable).parent / "litequeue"
    if script.is_file() and os.access(script, os.X_OK):
        return str(script)
    return f"{sys.executable} -m litequeue"


@dataclass
class Settings:
    """The installation the units describe."""

    command: str = "/opt/litequeue/venv/bin/litequeue"
    user: str = "litequeue"
    group: str | None = None
    workdir: str = "/srv/litequeue"
    db: str = "/var/lib/litequeue/litequeue.db"
    inbox: str = "/var/lib/litequeue/inbox"
    app: str | None = None
    shutdown_timeout: float = defaults.SHUTDOWN_TIMEOUT
    env_file: str = ENV_FILE
    extra_writable: list[str] = field(default_factory=list)

    @property
    def db_folder(self) -> str | None:
        path = None if is_url(self.db) and not self.db.startswith("sqlite:") else sqlite_path(self.db)
        if path is None or path == ":memory:":
            return None
        return os.path.dirname(os.path.join(self.workdir, path)) or "/"

    def writable(self, inbox: bool = True) -> list[str]:
        paths = [p for p in (self.db_folder, self.inbox if inbox else None, *self.extra_writable) if p]
        return list(dict.fromkeys(os.path.normpath(os.path.join(self.workdir, p)) for p in paths))

    @property
    def protect_home(self) -> str:
        places = [self.command.split()[0], self.workdir, *self.writable()]
        if any(p == root or p.startswith(root + "/") for p in places for root in HOME_ROOTS):
            return "read-only"
        return "yes"

    @property
    def stop_timeout(self) -> int:
        return int(self.shutdown_timeout) + 15


def _service_common(s: Settings, *, writable: list[str]) -> list[str]:
    lines = [
        f"User={s.user}",
        f"Group={s.group or s.user}",
        f"WorkingDirectory={s.workdir}",
        f"EnvironmentFile=-{s.env_file}",
        f"Environment=LITEQUEUE_DB={s.db}",
    ]
    if s.app:
        lines.append(f"Environment=LITEQUEUE_APP={s.app}")
    lines += [
        "Environment=PYTHONUNBUFFERED=1",
        "Restart=on-failure",
        "RestartSec=2s",
        f"RestartPreventExitStatus={EXIT_CONFIG}",
        "",
        "# Hardening that leaves task code working (see litequeue/systemd.py for what is left out).",
        "UMask=0007",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        f"ProtectHome={s.protect_home}",
    ]
    # '-': a missing folder is left to litequeue to report (one clear line), not to a
    # cryptic namespace failure (status 226/NAMESPACE).
    lines += [f"ReadWritePaths=-{p}" for p in writable]
    if any(p == t or p.startswith(t + "/") for p in writable for t in TMP_ROOTS):
        lines.append("# PrivateTmp=yes would hide the database or inbox under a temporary folder.")
        lines.append("PrivateTmp=no")
    else:
        lines.append("PrivateTmp=yes")
    lines += [
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictSUIDSGID=yes",
        "RestrictRealtime=yes",
        "LockPersonality=yes",
    ]
    return lines


def _unit(description: str, after: str = "network-online.target") -> list[str]:
    return [
        "[Unit]",
        f"Description={description}",
        "PartOf=litequeue.target",
        f"After={after}",
        f"Wants={after}",
        "StartLimitIntervalSec=300",
        "StartLimitBurst=10",
        "",
    ]


def _header(name: str) -> list[str]:
    return [f"# {name}: generated by `litequeue systemd --print`; edit the [Service] lines to taste.",
            "# Settings: /etc/litequeue/litequeue.env (LITEQUEUE_* variables) or a litequeue.toml",
            "# in the working directory."]


def consumer_unit(s: Settings) -> str:
    lines = [
        *_header(CONSUMER),
        "# One instance per queue set: litequeue-consumer@mail serves the queue 'mail'.",
        "# A consumer-NAME.env beside the settings file can change the set",
        "# (LITEQUEUE_RUN_CONSUMER_QUEUES=high,fetch; empty = every queue) or the workers",
        "# (LITEQUEUE_RUN_CONSUMER_WORKERS=8) of instance NAME.",
        *_unit("litequeue consumer for queue %i"),
        "[Service]",
        "Type=notify",
        f"ExecStart={s.command} run-consumer",
        "ExecReload=/bin/kill -HUP $MAINPID",
        *_service_common(s, writable=s.writable()),
        "Environment=LITEQUEUE_RUN_CONSUMER_QUEUES=%i",
        f"Environment=LITEQUEUE_RUN_CONSUMER_SHUTDOWN_TIMEOUT={s.shutdown_timeout:g}",
        f"EnvironmentFile=-{os.path.dirname(s.env_file)}/consumer-%i.env",
        f"WatchdogSec={WATCHDOG_SEC}",
        "KillMode=mixed",
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={s.stop_timeout}",
        "",
        "[Install]",
        "WantedBy=litequeue.target",
        "DefaultInstance=default",
    ]
    return "\n".join(lines) + "\n"


def inbox_unit(s: Settings) -> str:
    lines = [
        *_header(INBOX),
        "# Rules come from the settings: LITEQUEUE_WATCH_INBOX_RULE or [watch-inbox] rule = [...].",
        *_unit(f"litequeue inbox watcher for {s.inbox}"),
        "[Service]",
        "Type=exec",
        f"ExecStart={s.command} watch-inbox {s.inbox}",
        *_service_common(s, writable=s.writable()),
        "KillMode=mixed",
        f"TimeoutStopSec={s.stop_timeout}",
        "",
        "[Install]",
        "WantedBy=litequeue.target",
    ]
    return "\n".join(lines) + "\n"


def web_unit(s: Settings) -> str:
    lines = [
        *_header(WEB),
        f"# Listens on {defaults.WEB_HOST}:{defaults.WEB_PORT} unless the settings say otherwise.",
        *_unit("litequeue status page"),
        "[Service]",
        "Type=notify",
        f"ExecStart={s.command} serve-web",
        # The page writes only for its buttons (retry, cancel); the inbox is not its business.
        *_service_common(s, writable=s.writable(inbox=False)),
        f"WatchdogSec={WATCHDOG_SEC}",
        "KillMode=mixed",
        "TimeoutStopSec=20",
        "",
        "[Install]",
        "WantedBy=litequeue.target",
    ]
    return "\n".join(lines) + "\n"


def target_unit(s: Settings) -> str:
    lines = [
        f"# {TARGET}: starts and stops every litequeue unit together.",
        "# systemctl enable --now litequeue.target litequeue-consumer@default litequeue-inbox litequeue-web",
        "[Unit]",
        "Description=litequeue: consumers, inbox watcher and status page",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


def render(settings: Settings | None = None) -> dict[str, str]:
    """Every unit's file name and text for ``settings`` (the defaults when None)."""
    s = settings or Settings()
    return {CONSUMER: consumer_unit(s), INBOX: inbox_unit(s), WEB: web_unit(s), TARGET: target_unit(s)}


def parse(text: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values]}} (comments and blank lines dropped)."""
    out: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = out.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key.strip(), []).append(value.strip())
    return out
