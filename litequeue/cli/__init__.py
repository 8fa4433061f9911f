"""The ``litequeue`` command: a thin layer over the library (no SQL of its own)."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from ..errors import LiteQueueError


class Group(click.Group):
    """Turns litequeue's errors into one line (``Error: ...``) and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LiteQueueError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=Group, context_settings={"auto_envvar_prefix": "LITEQUEUE", "show_default": True,
                                          "help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="LITEQUEUE_DB", show_envvar=True, metavar="PATH|URL",
              help="Database: a SQLite path or a database URL (default ./litequeue.db).")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.version_option(package_name="litequeue")
@click.pass_context
def main(ctx: click.Context, db: str | None, verbose: int, quiet: bool) -> None:
    """litequeue: a background-job queue for one host that needs no broker."""
    import os

    if db:
        os.environ["LITEQUEUE_DB"] = db
    ctx.ensure_object(dict)
    ctx.obj["db"] = db
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    ctx.obj["log_level"] = level


from . import consumer as _consumer  # noqa: E402,F401  (registers commands)
from . import inbox as _inbox  # noqa: E402,F401
from . import jobs as _jobs  # noqa: E402,F401
from . import ops as _ops  # noqa: E402,F401
from . import queues as _queues  # noqa: E402,F401
from . import web as _web  # noqa: E402,F401


def run() -> None:
    main(prog_name="litequeue")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
