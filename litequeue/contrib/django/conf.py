"""What ``settings.LITEQUEUE`` of a Django project says: where the queue lives (a Django
database, or a SQLite path or database URL of its own), with which durability, and the
defaults of ``manage.py run_consumer`` and of the mounted status page."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from litequeue.base import defaults
from litequeue.base.errors import ConfigurationError
from litequeue.store.database import database_target

#: The keys ``LITEQUEUE`` may hold (anything else is a typo, refused in one line).
KEYS = frozenset({"name", "database", "durability", "busy_timeout", "crash_cap", "results", "consumer", "web"})
#: The keys of ``LITEQUEUE["web"]``: the mounted status page's options.
WEB_KEYS = frozenset({"read_only", "refresh_seconds", "page_size"})


@dataclass(frozen=True)
class Placement:
    """Where the queue lives, and what an enqueue inside a Django transaction does."""

    #: what ``LiteQueue(db=...)`` takes: a SQLite path or a database URL
    target: str
    #: the Django database holding the queue: its ``atomic()`` blocks take the enqueues
    #: made inside them (``None``: the queue is elsewhere)
    joins: str | None
    #: the Django database whose commit an enqueue waits for when the queue is elsewhere
    defers: str


def config() -> dict[str, Any]:
    """``settings.LITEQUEUE`` (``{}`` if unset), its keys checked."""
    from django.conf import settings

    raw = getattr(settings, "LITEQUEUE", None) or {}
    if not isinstance(raw, dict):
        raise ConfigurationError(f"settings.LITEQUEUE must be a dict, not {type(raw).__name__}")
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise ConfigurationError(f"settings.LITEQUEUE has unknown keys {unknown}; it takes {sorted(KEYS)}")
    web = raw.get("web") or {}
    if not isinstance(web, dict) or set(web) - WEB_KEYS:
        raise ConfigurationError(f"settings.LITEQUEUE['web'] takes a dict of {sorted(WEB_KEYS)}")
    return dict(raw)


def queue_options(cfg: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of the project's ``LiteQueue``."""
    options: dict[str, Any] = {"name": cfg.get("name", defaults.APP_NAME)}
    for key in ("durability", "busy_timeout", "crash_cap", "results"):
        if cfg.get(key) is not None:
            options[key] = cfg[key]
    return options


def place(cfg: dict[str, Any]) -> Placement:
    """Where the queue lives, read from Django's settings now (so a test run's database,
    which the test runner puts in ``DATABASES`` once it has made it, is the one used).

    ``database`` unset: Django's ``default`` database when it is SQLite or PostgreSQL
    (enqueues inside its ``atomic()`` join it), else ``$LITEQUEUE_DB`` or
    ``./litequeue.db`` (enqueues inside ``atomic()`` wait for the commit). A Django alias:
    that database. Anything else: a SQLite path or database URL of its own."""
    from django.db import DEFAULT_DB_ALIAS, connections

    database = cfg.get("database")
    if database is not None and database not in connections.settings:
        return Placement(database_target(os.fspath(database)), None, DEFAULT_DB_ALIAS)
    alias = database or DEFAULT_DB_ALIAS
    target = django_target(alias, connections.settings[alias])
    if target is None:
        return Placement(database_target(None), None, alias)
    return Placement(target, alias, alias)


def django_target(alias: str, db: dict[str, Any]) -> str | None:
    """The SQLite path or PostgreSQL URL of a Django database (None: another engine)."""
    engine = str(db.get("ENGINE", ""))
    if engine.endswith("sqlite3") or engine.endswith("spatialite"):
        name = os.fspath(db.get("NAME") or "")
        if not name or name == ":memory:" or "mode=memory" in name:
            raise ConfigurationError(
                f"Django's database {alias!r} is in memory, where no consumer can reach the queue: give it a file "
                f"(for tests: DATABASES[{alias!r}]['TEST'] = {{'NAME': 'test.sqlite3'}}), or set "
                "LITEQUEUE['database'] to a file of its own")
        return os.path.abspath(name)
    if "postgresql" in engine or "postgis" in engine:
        user = quote(str(db.get("USER") or ""), safe="")
        password = quote(str(db.get("PASSWORD") or ""), safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = str(db.get("HOST") or "")
        host = quote(host, safe="") if host.startswith("/") else host  # a socket folder
        port = f":{db['PORT']}" if db.get("PORT") else ""
        params = {k: v for k, v in (db.get("OPTIONS") or {}).items() if isinstance(v, str | int)}
        query = f"?{urlencode(params)}" if params else ""
        return f"postgresql://{auth}{host}{port}/{quote(str(db.get('NAME') or ''), safe='')}{query}"
    return None


def consumer_args(cfg: dict[str, Any]) -> list[str]:
    """``LITEQUEUE["consumer"]`` (``{"workers": 4, "queues": "mail,default", "burst": False}``)
    as ``litequeue run-consumer`` flags, before the command line's own (which win)."""
    args: list[str] = []
    options = cfg.get("consumer") or {}
    if not isinstance(options, dict):
        raise ConfigurationError("settings.LITEQUEUE['consumer'] must be a dict of run-consumer options")
    for key, value in options.items():
        flag = "--" + str(key).replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, list | tuple):
            args += [flag, ",".join(str(v) for v in value)]
        else:
            args += [flag, str(value)]
    return args
