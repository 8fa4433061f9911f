"""litequeue for Django: add ``"litequeue.contrib.django"`` to ``INSTALLED_APPS``.

The project's queue (:class:`litequeue.contrib.django.djangoqueue.DjangoQueue`) is configured by
``settings.LITEQUEUE`` and, by default, lives in Django's ``default`` database (SQLite or
PostgreSQL), so a job enqueued inside ``transaction.atomic()`` exists iff that transaction
commits. Tasks are declared in each installed app's ``tasks.py`` (found at start-up)::

    from litequeue.contrib.django import task

    @task(retries=3)
    def send_receipt(order_id): ...

``python manage.py run_consumer -w 4`` runs them; ``python manage.py litequeue ...`` is the
rest of the ``litequeue`` command; :mod:`litequeue.contrib.django.urls` mounts the status
page behind the admin's login.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litequeue.contrib.django.djangoqueue import DjangoQueue

__all__ = ["get_queue", "periodic_task", "task"]
#: What the CLI commands load (``MODULE:ATTR``): the project's queue.
APP_SPEC = "litequeue.contrib.django:queue"

_queue: DjangoQueue | None = None
_lock = threading.Lock()


def get_queue() -> DjangoQueue:
    """The project's queue, built from ``settings.LITEQUEUE`` on first use (also
    ``litequeue.contrib.django.queue``)."""
    global _queue
    if _queue is None:
        with _lock:
            if _queue is None:
                from litequeue.contrib.django.djangoqueue import DjangoQueue

                _queue = DjangoQueue()
    return _queue


def task(*args: Any, **kwargs: Any) -> Any:
    """``@task`` / ``@task(queue="mail", retries=3)`` on the project's queue."""
    return get_queue().task(*args, **kwargs)


def periodic_task(*args: Any, **kwargs: Any) -> Any:
    """``@periodic_task(crontab(minute="*/5"))`` on the project's queue."""
    return get_queue().periodic_task(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "queue":
        return get_queue()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
