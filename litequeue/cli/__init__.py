"""The ``litequeue`` command's entry point: imports every command module, so each registers
itself on the group (``litequeue.cli.root.main``), and runs it.

The group, its options, exit statuses and error handling live in :mod:`litequeue.cli.root`;
``main`` is re-exported here (``from litequeue.cli import main``; the console script is
``litequeue.cli:run``).
"""

from __future__ import annotations

import sys

import click

from litequeue.cli import batches as _batches  # noqa: F401  (registers commands)
from litequeue.cli import consumer as _consumer  # noqa: F401
from litequeue.cli import inbox as _inbox  # noqa: F401
from litequeue.cli import jobs as _jobs  # noqa: F401
from litequeue.cli import limits as _limits  # noqa: F401
from litequeue.cli import migrate as _migrate  # noqa: F401
from litequeue.cli import ops as _ops  # noqa: F401
from litequeue.cli import queues as _queues  # noqa: F401
from litequeue.cli import replay as _replay
from litequeue.cli import schedules as _schedules  # noqa: F401
from litequeue.cli import stats as _stats  # noqa: F401
from litequeue.cli import top as _top
from litequeue.cli import web as _web  # noqa: F401
from litequeue.cli.root import main

__all__ = ["main", "run"]

# Commands whose modules do not import this package (no import circle): registered here.
main.add_command(_top.top)
_jobs.jobs.add_command(_replay.jobs_replay)


def _show_envvars(command: click.Command) -> None:
    """Every option's variable in --help, for the commands every module registered."""
    for param in command.params:
        if isinstance(param, click.Option) and not param.is_eager:
            param.show_envvar = True
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _show_envvars(sub)


_show_envvars(main)


def run() -> None:
    main(prog_name="litequeue")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
