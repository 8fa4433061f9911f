"""Every private attribute of Huey that litequeue touches, in one place.

Huey has public hooks for most of what litequeue needs (``signal()``, ``post_execute()``,
``storage.enqueue``/``add_to_schedule``, ``create_consumer``), and litequeue uses those.
What is left has no public spelling: the task registry, and the consumer's signal
handling. Those names are read only here, and ``tests/unit/test_hueyseams.py`` names each
one, so a Huey release that renames one fails in CI instead of in production. The Huey
versions this was tested against are pinned in ``pyproject.toml``.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

from huey.api import Huey, Result, Task
from huey.consumer import Consumer
from huey.registry import Registry

#: (owner, attribute): what litequeue relies on; the test checks each one exists.
PRIVATE: tuple[tuple[str, str], ...] = (
    ("Huey", "_registry"),  # the registry instance (replaced by LiteRegistry)
    ("Registry", "_registry"),  # its name -> task class dict
    ("Consumer", "_signal_actions"),  # signal -> (restart, graceful)
    ("Consumer", "_signum"),  # the signal received, read by Consumer.loop
    ("Consumer", "_restart"),
    ("Consumer", "_graceful"),
    ("Consumer", "_set_signal_handlers"),
    ("Consumer", "_handle_signal"),
    ("Consumer", "_stop_flag_timeout"),  # how long Consumer.loop waits on its stop flag (0.1 s)
    ("Consumer", "_health_check_interval"),
    ("Consumer", "_create_worker"),  # documented by Huey as the override point for workers
    ("Consumer", "_create_scheduler"),
    ("Consumer", "_create_process"),  # runs a worker's loop in a thread or process
    ("Huey", "_pipeline_results"),  # the handles enqueue returns (LiteQueue: LiteResult)
    ("Huey", "_signal"),  # its receivers: the bulk path skips Huey.enqueue only when none but litequeue's
)


# -- the task registry --------------------------------------------------------------------

def registry(huey: Huey) -> Registry:
    return huey._registry


def install_registry(huey: Huey, replacement: Registry) -> None:
    """Swap Huey's registry for ``replacement`` (before any task is declared)."""
    huey._registry = replacement


def registered(reg: Registry) -> dict[str, type[Task]]:
    """The registry's qualified name -> task class mapping (live, not a copy)."""
    return reg._registry


def task_classes(huey: Huey) -> dict[str, type[Task]]:
    return registered(registry(huey))


def signal_receivers(huey: Huey) -> list[Any]:
    """Every receiver connected to ``huey``'s signals (``@huey.signal()``), of any signal."""
    return [fn for receivers in huey._signal.receivers.values() for fn in receivers]


# -- the handles enqueue returns ----------------------------------------------------------

class HueySeams(Huey):
    """Huey with its result handles made by :meth:`result_handle` (LiteQueue returns
    handles that can ``cancel()``)."""

    def _pipeline_results(self, task: Task) -> list[Result]:
        return [self.result_handle(r.task) for r in super()._pipeline_results(task)]

    def result_handle(self, task: Task) -> Result:
        return Result(self, task)


# -- the consumer's signal handling ---------------------------------------------------------

class ConsumerSeams(Consumer):
    """The consumer hooks Huey only has as private methods, overridden once, here.

    Subclasses implement :meth:`create_worker`, :meth:`create_scheduler` and
    :meth:`on_signal` (which returns ``(restart, graceful)``)."""

    def poll_stop_flag(self, seconds: float) -> None:
        """How long Huey's loop waits on its stop flag each turn (its own: 0.1 s, ten
        wake-ups a second while idle); 0 when the subclass sleeps before each turn."""
        self._stop_flag_timeout = seconds

    def wake_main_loop(self) -> None:
        """Called when a signal or a stop request arrived (from a signal handler, or from
        any thread): a subclass whose main loop sleeps wakes it here."""

    def health_check_due(self, last: float | None) -> float:
        """Seconds until Huey's loop checks its workers' health again (from ``last``)."""
        if last is None:
            return self._health_check_interval
        return last + self._health_check_interval - time.monotonic()

    def set_signal_actions(self, actions: dict[int, tuple[bool, bool]]) -> None:
        self._signal_actions = actions

    def install_signal_handlers(self) -> None:
        # Only the main thread may set handlers; tests run consumers in other threads.
        if threading.current_thread() is threading.main_thread():
            if not getattr(self, "_saved_handlers", None):  # called again by Huey's start(): keep the first
                self._saved_handlers = {sig: signal.getsignal(sig) for sig in self._signal_actions}
            super()._set_signal_handlers()

    def restore_signal_handlers(self) -> None:
        """Put back the handlers :meth:`install_signal_handlers` replaced: a consumer run in
        a process that lives on (``manage.py``, a test runner) leaves its signals as it found
        them, not ignored (a program that process starts would inherit an ignored SIGINT)."""
        saved = getattr(self, "_saved_handlers", None)
        if saved and threading.current_thread() is threading.main_thread():
            for sig, handler in saved.items():
                signal.signal(sig, signal.SIG_DFL if handler is None else handler)
            self._saved_handlers = {}

    @property
    def restart_requested(self) -> bool:
        return bool(self._restart)

    def signal_received(self) -> int | None:
        return self._signum

    def _set_signal_handlers(self) -> None:
        self.install_signal_handlers()

    def request_graceful_stop(self) -> None:
        """Stop as a SIGTERM would (graceful), from any thread: the main loop wakes for it."""
        if self._signum is None:
            self._restart, self._graceful = False, True
            self._signum = signal.SIGTERM
        self.wake_main_loop()

    def _handle_signal(self, signum: int, frame: Any) -> None:
        if self._signum is not None and not self._restart:
            raise KeyboardInterrupt  # a second signal: stop now
        self._signum = signum
        self._restart, self._graceful = self._signal_actions[signum]
        self.wake_main_loop()

    def _create_worker(self) -> Any:
        return self.create_worker()

    def start_worker(self, name: str) -> tuple[Any, Any]:
        """A new worker, started in its own thread or process: (worker, thread or process)."""
        worker = self.create_worker()
        process = self._create_process(worker, name)
        process.start()
        return worker, process

    def _create_scheduler(self) -> Any:
        return self.create_scheduler()

    def create_worker(self) -> Any:
        raise NotImplementedError

    def create_scheduler(self) -> Any:
        raise NotImplementedError
