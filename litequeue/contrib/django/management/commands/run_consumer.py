"""``python manage.py run_consumer [-w N] [-k thread|process|asyncio] [-Q Q1,Q2] [--burst] ...``:
``litequeue run-consumer`` on the project's queue and the tasks of every app's ``tasks.py``."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand

from litequeue.contrib.django import cli


class Command(BaseCommand):
    help = ("Run litequeue's consumer on this project's tasks: the options of `litequeue run-consumer` "
            "(-w WORKERS, -k thread|process|asyncio, -Q Q1,Q2, --burst, ...); --help lists them.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("args", nargs=argparse.REMAINDER, help="litequeue run-consumer's options")

    def run_from_argv(self, argv: list[str]) -> None:
        # click parses the options (the same as `litequeue run-consumer`), not argparse.
        cli.run(cli.without_django_options(argv[2:]), cli.prog_name(argv), consumer=True)

    def handle(self, *args: str, **options: Any) -> None:
        cli.run(list(args), "run_consumer", consumer=True)
