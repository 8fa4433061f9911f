"""Job options litequeue adds to Huey's task call: tags, dependencies, unique keys, batches.

Huey's call signature (``task(*args, **kwargs)``) has no room for them, so they travel on
the task object instead, from any of three places, merged in this order:

* ``@app.task(tags=[...], unique=True, unique_for=60)``: defaults of every job of the task;
* ``task.s(...).with_options(tags=[...], depends_on=[...], ...)`` or ``.with_tags(...)``;
* ``app.enqueue(task.s(...), tags=[...], ...)``.

They never enter Huey's message (the payload): :func:`options_for` reads them when the
job's rows are written."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from huey.api import Task

from litequeue.base.errors import ConfigurationError
from litequeue.base.values import JobOptions

#: What ``on_dependency_failure`` may be.
DEPENDENCY_FAILURE = ("cancel", "run")


class LiteTask(Task):
    """Huey's Task, plus litequeue's per-job options."""

    def with_options(self, *, tags: Iterable[str] | None = None, depends_on: Iterable[Any] | None = None,
                     on_dependency_failure: str | None = None, unique_key: str | None = None,
                     unique_for: float | None = None, batch: Any = None) -> LiteTask:
        """Set litequeue options on this job (see :class:`JobOptions`); returns the task."""
        current = getattr(self, "lq_options", None) or JobOptions()
        changes: dict[str, Any] = {}
        if tags is not None:
            changes["tags"] = tuple(dict.fromkeys([*current.tags, *clean_tags(tags)]))
        if depends_on is not None:
            changes["depends_on"] = tuple(dict.fromkeys([*current.depends_on, *job_ids(depends_on)]))
        if on_dependency_failure is not None:
            if on_dependency_failure not in DEPENDENCY_FAILURE:
                raise ConfigurationError(f"on_dependency_failure must be one of {', '.join(DEPENDENCY_FAILURE)}, "
                                         f"not {on_dependency_failure!r}")
            changes["on_dependency_failure"] = on_dependency_failure
        if unique_key is not None:
            changes["unique_key"] = str(unique_key)
        if unique_for is not None:
            if unique_for < 0:
                raise ConfigurationError(f"unique_for must be zero or more seconds, not {unique_for!r}")
            changes["unique_for"] = float(unique_for)
        if batch is not None:
            changes["batch_id"] = getattr(batch, "id", batch)
        self.lq_options = replace(current, **changes)
        return self

    def with_tags(self, *tags: str) -> LiteTask:
        """Tag this job: ``task.s(url).with_tags("site:acme")``."""
        return self.with_options(tags=tags)


def clean_tags(tags: Iterable[str] | str) -> list[str]:
    if isinstance(tags, str):
        tags = [tags]
    out = []
    for tag in tags:
        tag = str(tag).strip()
        if not tag or "," in tag or len(tag) > 200:
            raise ConfigurationError(f"a tag is a non-empty text of at most 200 characters without commas, "
                                     f"not {tag!r}")
        out.append(tag)
    return out


def job_ids(items: Iterable[Any]) -> list[str]:
    """Job ids from ids, result handles or tasks."""
    if isinstance(items, str) or hasattr(items, "id"):
        items = [items]
    return [str(getattr(item, "id", item)) for item in items]


def unique_key_for(task: Task) -> str:
    """``@app.task(unique=True)``: the key is the task's name and its arguments."""
    args = json.dumps([list(task.args), task.kwargs], sort_keys=True, default=repr)
    return f"{type(task).__name__}:{hashlib.sha256(args.encode()).hexdigest()[:32]}"


def adopt_existing(task: Task) -> Callable[[str], None]:
    """What a job whose unique key another job holds does with that job's id: the task
    takes it, so the handle Huey builds from the task (``Result``) is that job's."""
    def adopt(job_id: str) -> None:
        task.id = job_id
        task.revoke_id = f"r:{job_id}"
    return adopt


def options_for(task: Task) -> JobOptions | None:
    """The options of ``task``'s job: its task's defaults, then its own."""
    cls = type(task)
    own: JobOptions | None = getattr(task, "lq_options", None)
    tags = tuple(dict.fromkeys([*getattr(cls, "lq_tags", ()), *(own.tags if own else ())]))
    unique_key = own.unique_key if own else None
    if unique_key is None and getattr(cls, "lq_unique", False):
        unique_key = unique_key_for(task)
    unique_for = own.unique_for if own and own.unique_for is not None else getattr(cls, "lq_unique_for", None)
    if own is None and not tags and unique_key is None:
        return None
    base = own or JobOptions()
    return replace(base, tags=tags, unique_key=unique_key, unique_for=unique_for)
