"""``python manage.py run_consumer [-w N] [-k thread|process|asyncio] [-Q Q1,Q2] [--burst] ...``:
``litequeue run-consumer`` on the project's queue and the tasks of every app's ``tasks.py``."""

from __future__ import annotations

from litequeue.contrib.django.cli import ClickCommand


class Command(ClickCommand):
    help = ("Run litequeue's consumer on this project's tasks: the options of `litequeue run-consumer` "
            "(-w WORKERS, -k thread|process|asyncio, -Q Q1,Q2, --burst, ...); --help lists them.")
    consumer = True
    name = "run_consumer"
    args_help = "litequeue run-consumer's options"
