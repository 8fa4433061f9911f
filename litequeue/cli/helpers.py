"""What the command modules share: common options (APP, ``--json``, ``--db``), JSON in and
out, logging set-up, and opening the database, the ledger alone or the user's app."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    import peewee as pw

    from litequeue.app import LiteQueue
    from litequeue.engine.storage import LiteStorage

F = Callable[..., Any]


def app_argument(f: F) -> F:
    return click.argument("app", envvar="LITEQUEUE_APP", required=False, metavar="APP")(f)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def store(ctx: click.Context, create: bool = False) -> LiteStorage:
    """The database alone (read commands never import the user's code)."""
    from litequeue.engine.storage import open_store

    return open_store(ctx.obj.get("db"), create=create)


def ledger(ctx: click.Context) -> pw.Database:
    """The database for a command that only reads the ledger: no Huey, no user code."""
    from litequeue.store.database import open_checked

    return open_checked(ctx.obj.get("db"))


def user_app(spec: str | None) -> LiteQueue:
    from litequeue.ops.loader import load_app

    return load_app(spec)


def parse_json(value: str | None, kind: type, param: str) -> Any:
    if value is None:
        return kind()
    try:
        data = json.loads(value)
    except RecursionError:  # "[[[[...": nested deeper than Python's parser goes
        raise click.BadParameter("not valid JSON (nested too deeply)", param_hint=param) from None
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON ({exc}); e.g. "
                                 + ("'[1, \"a\"]'" if kind is list else "'{\"key\": 1}'"),
                                 param_hint=param) from None
    if not isinstance(data, kind):
        raise click.BadParameter(f"must be a JSON {'list' if kind is list else 'object'}",
                                 param_hint=param)
    return data


def setup_logging(level: int) -> None:
    """Logging for a command; the ``litequeue`` group already set it up from
    --log-format, --logfile, -v and -q, so this only matters outside the group."""
    from litequeue.base import logs

    if not logs.is_configured():
        logs.setup(level)


def db_option(f: F) -> F:
    """``--db`` after the command name too (``litequeue health --db /data/lq.db``)."""
    return click.option("--db", "db", envvar="LITEQUEUE_DB", metavar="PATH|URL", default=None,
                        help="Database, when not given to litequeue itself.")(f)
