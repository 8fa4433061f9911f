"""The ``litequeue`` command's entry point: the group (``litequeue.cli.root.main``) and which
modules define each of its commands; a command's modules are imported when it is asked for,
so ``litequeue status`` imports no consumer, web or inbox-watcher code.

The group, its options, exit statuses and error handling live in :mod:`litequeue.cli.root`;
``main`` is re-exported here (``from litequeue.cli import main``; the console script is
``litequeue.cli:run``). A new command module adds its commands to :data:`COMMANDS`
(``tests/cli/test_lazy_commands.py`` checks the table against what the modules register).
"""

from __future__ import annotations

import sys

from litequeue.cli.root import main, show_envvars

__all__ = ["COMMANDS", "main", "run"]

_CLI = "litequeue.cli."
#: Command name -> the modules that make it. ``status`` also takes the inbox and breaker
#: modules, which add their parts to it (``root.status_extras``).
COMMANDS: dict[str, tuple[str, ...]] = {
    "batches": ("batches",), "breakers": ("limits",), "doctor": ("ops",), "enqueue": ("jobs",),
    "health": ("ops",), "jobs": ("jobs",), "migrate": ("migrate",), "pause": ("queues",), "prune": ("queues",),
    "purge": ("queues",), "resume": ("queues",), "run-consumer": ("consumer",), "schedules": ("schedules",),
    "serve-web": ("web",), "stats": ("stats",), "status": ("jobs", "inbox", "limits"), "systemd": ("ops",),
    "tasks": ("jobs",), "top": ("top",), "watch-inbox": ("inbox",),
}
main.lazy.update({name: tuple(_CLI + m for m in modules) for name, modules in COMMANDS.items()})
show_envvars(main)  # the group's own options; each command's as it loads


def run() -> None:
    main(prog_name="litequeue")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
