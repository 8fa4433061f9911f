"""What an app limits at run time: how many jobs of a task or a queue run at once, a queue's
default timeout, and circuit breakers.

These are declared in code (``@app.task(concurrency=2, breaker=Breaker(...))``) and in the
config file (``[queues.ocr] concurrency = 4``, ``timeout = "10m"``), kept here per app, and
published to the database when a consumer starts (``lq_limit``, ``lq_breaker``) so that
``status`` and ``litequeue breakers`` can show them without importing the app. They are
enforced in the claim (:func:`litequeue.jobs.claim.claim`, through
:class:`litequeue.jobs.limits.Gate`): a job over a limit, or of a
task whose breaker is open, is simply not taken yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litequeue.base.durations import parse_duration
from litequeue.base.errors import ConfigurationError


def seconds(value: float | int | str, what: str) -> float:
    """A duration given as seconds or as text (``30s``, ``10m``, ``1h30m``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigurationError(f"{what} must be seconds or a duration like '10m', not {value!r}")
    try:
        out = float(value) if not isinstance(value, str) else parse_duration(value)
    except ValueError as exc:
        raise ConfigurationError(f"{what}: {exc}") from None
    if out <= 0:
        raise ConfigurationError(f"{what} must be longer than 0s, not {value!r}")
    return out


def _positive(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{what} must be a whole number of 1 or more, not {value!r}")
    return value


@dataclass(frozen=True)
class Breaker:
    """A circuit breaker for a task: after ``failures`` failed attempts within ``window``,
    the task's queued jobs are held (they stay ``queued``, no retry is used) for
    ``cooldown``; then one trial job runs: its success closes the breaker, its failure
    opens it again. Durations are seconds or text (``"1m"``, ``"5m"``)."""

    failures: int = 5
    window: float | str = "1m"
    cooldown: float | str = "5m"

    def __post_init__(self) -> None:
        _positive(self.failures, "Breaker(failures=...)")
        object.__setattr__(self, "window", seconds(self.window, "Breaker(window=...)"))
        object.__setattr__(self, "cooldown", seconds(self.cooldown, "Breaker(cooldown=...)"))

    @property
    def window_s(self) -> float:
        return float(self.window)

    @property
    def cooldown_s(self) -> float:
        return float(self.cooldown)


@dataclass
class Limits:
    """An app's run-time limits (empty for most apps: then claims take the fast path)."""

    #: task name (as in the ledger) -> jobs of it that may run at once
    tasks: dict[str, int] = field(default_factory=dict)
    #: queue -> jobs of it that may run at once
    queues: dict[str, int] = field(default_factory=dict)
    #: queue -> default timeout in seconds of its tasks that set none
    timeouts: dict[str, float] = field(default_factory=dict)
    #: task name -> its breaker
    breakers: dict[str, Breaker] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """Does any claim need to look at limits?"""
        return bool(self.tasks or self.queues or self.breakers)

    def add_task(self, name: str, concurrency: int | None, breaker: Breaker | None) -> None:
        if concurrency is not None:
            self.tasks[name] = _positive(concurrency, f"@task(concurrency=...) of {name}")
        if breaker is not None:
            if not isinstance(breaker, Breaker):
                raise ConfigurationError(f"@task(breaker=...) of {name} must be a litequeue.Breaker, "
                                         f"not {type(breaker).__name__}")
            self.breakers[name] = breaker

    def set_queue(self, queue: str, concurrency: int | None = None,
                  timeout: float | str | None = None) -> None:
        if concurrency is not None:
            self.queues[queue] = _positive(concurrency, f"[queues.{queue}] concurrency")
        if timeout is not None:
            self.timeouts[queue] = seconds(timeout, f"[queues.{queue}] timeout")


#: Keys a ``[queues.NAME]`` table may hold.
QUEUE_KEYS = ("concurrency", "timeout")


def queue_settings(data: Any, label: str) -> dict[str, dict[str, Any]]:
    """Check the config file's ``queues`` table (``[queues.ocr] concurrency = 4``,
    ``timeout = "10m"``); returns it by queue name. One-line errors name the key."""
    if not isinstance(data, dict):
        raise ConfigurationError(f"{label}: queues must be a table of queue tables, e.g. "
                                 "[queues.ocr] concurrency = 4")
    out: dict[str, dict[str, Any]] = {}
    for queue, table in data.items():
        if not isinstance(table, dict):
            raise ConfigurationError(f"{label}: [queues] {queue} must be a table ([queues.{queue}]) "
                                     f"with {' and/or '.join(QUEUE_KEYS)}")
        unknown = sorted(set(table) - set(QUEUE_KEYS))
        if unknown:
            raise ConfigurationError(f"{label}: [queues.{queue}] unknown key {unknown[0]!r}; "
                                     f"known keys: {', '.join(QUEUE_KEYS)}")
        probe = Limits()
        try:
            probe.set_queue(queue, table.get("concurrency"), table.get("timeout"))
        except ConfigurationError as exc:
            raise ConfigurationError(f"{label}: {exc}") from None
        out[queue] = dict(table)
    return out
