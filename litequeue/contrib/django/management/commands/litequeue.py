"""``python manage.py litequeue COMMAND ...``: every ``litequeue`` command (``status``,
``jobs list``, ``health``, ``serve-web``, ...) on the project's queue."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand

from litequeue.contrib.django import cli


class Command(BaseCommand):
    help = ("The litequeue command line on this project's queue: `manage.py litequeue status`, "
            "`manage.py litequeue jobs list --status failed`; --help lists the commands.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("args", nargs=argparse.REMAINDER, help="a litequeue command and its options")

    def run_from_argv(self, argv: list[str]) -> None:
        cli.run(cli.without_django_options(argv[2:]), cli.prog_name(argv), consumer=False)

    def handle(self, *args: str, **options: Any) -> None:
        cli.run(list(args), "litequeue", consumer=False)
