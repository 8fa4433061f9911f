"""The Django application ``litequeue.contrib.django``: at start-up, every installed app's
``tasks.py`` is imported, so its tasks are registered before a consumer or a view needs them;
each new Django connection on the queue's database lets the queue follow the settings (a
test run's database) before a transaction opens on it."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.utils.module_loading import autodiscover_modules


def _connected(sender: Any, connection: Any, **kwargs: Any) -> None:
    from litequeue.contrib import django as contrib

    if contrib._queue is not None:
        contrib._queue.connected(connection.alias)


class LiteQueueConfig(AppConfig):
    name = "litequeue.contrib.django"
    label = "litequeue"
    verbose_name = "litequeue"

    def ready(self) -> None:
        connection_created.connect(_connected, dispatch_uid="litequeue.contrib.django")
        autodiscover_modules("tasks")
