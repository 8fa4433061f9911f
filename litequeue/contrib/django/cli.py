"""``manage.py run_consumer`` and ``manage.py litequeue``: the ``litequeue`` click command run
in the Django process, on the project's queue (its database, durability and tasks), with
the command line parsed by click exactly as ``litequeue run-consumer`` parses it."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from django.core.management.base import BaseCommand

#: Django's own options, already applied by ``manage.py`` before the command runs.
DJANGO_OPTIONS = ("--settings", "--pythonpath")


def without_django_options(args: Sequence[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in DJANGO_OPTIONS:
            skip = True
        elif not arg.startswith(tuple(f"{o}=" for o in DJANGO_OPTIONS)):
            out.append(arg)
    return out


def run(args: Sequence[str], prog: str, consumer: bool) -> None:
    """Run ``litequeue [top options] run-consumer APP ARGS`` (``consumer``) or
    ``litequeue [top options] ARGS`` on the project's queue; returns on exit status 0."""
    from litequeue.cli import main
    from litequeue.contrib.django import APP_SPEC, conf, get_queue

    queue = get_queue()
    top = ["--db", queue.placement().target, "--durability", queue.durability,
           "--busy-timeout", str(queue.busy_timeout), "--app", APP_SPEC]
    if consumer:
        argv = [*top, "run-consumer", *conf.consumer_args(queue.django_config), *args]
    else:
        argv = [*top, *args]
    try:
        main.main(args=argv, prog_name=prog, standalone_mode=True)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise


def prog_name(argv: Sequence[str]) -> str:
    return f"{os.path.basename(argv[0])} {argv[1]}"


class ClickCommand(BaseCommand):
    """A management command that hands its whole command line to click (which parses it as
    the ``litequeue`` command does), not to argparse."""

    #: ``manage.py run_consumer`` (True) or ``manage.py litequeue`` (False)
    consumer = False
    #: the name the command runs as when called from code (``call_command``)
    name = "litequeue"
    args_help = "a litequeue command and its options"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("args", nargs=argparse.REMAINDER, help=self.args_help)

    def run_from_argv(self, argv: list[str]) -> None:
        run(without_django_options(argv[2:]), prog_name(argv), consumer=self.consumer)

    def handle(self, *args: str, **options: Any) -> None:
        run(list(args), self.name, consumer=self.consumer)
