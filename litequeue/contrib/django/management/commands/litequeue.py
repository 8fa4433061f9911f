"""``python manage.py litequeue COMMAND ...``: every ``litequeue`` command (``status``,
``jobs list``, ``health``, ``serve-web``, ...) on the project's queue."""

from __future__ import annotations

from litequeue.contrib.django.cli import ClickCommand


class Command(ClickCommand):
    help = ("The litequeue command line on this project's queue: `manage.py litequeue status`, "
            "`manage.py litequeue jobs list --status failed`; --help lists the commands.")
