"""Every part of Huey litequeue leans on, named, so a Huey upgrade that moves one fails here.

The private attributes live in ``litequeue/huey_compat.py`` (nothing else reads them); the
public seams below are the behaviours LiteQueue builds on (where ``Huey.enqueue`` hands
the serialized task to its storage, in what order ``execute`` runs hooks and enqueues).
"""

from __future__ import annotations

import ast
import inspect
import re
import signal
from pathlib import Path

import huey
import pytest
from huey.api import Huey, MemoryHuey
from huey.consumer import Consumer
from huey.registry import Registry
from huey.storage import MemoryStorage

from litequeue.engine import huey_compat

ROOT = Path(__file__).resolve().parents[2]


def owners() -> dict[str, object]:
    app = MemoryHuey("seams")
    return {"Huey": app, "Registry": Registry(),
            "Consumer": Consumer(app, workers=1, check_worker_health=False)}


@pytest.mark.parametrize("owner,attr", huey_compat.PRIVATE, ids=[f"{o}.{a}" for o, a in huey_compat.PRIVATE])
def test_each_private_attribute_litequeue_uses_still_exists(owner: str, attr: str) -> None:
    obj = owners()[owner]
    assert hasattr(obj, attr), (
        f"huey {huey.__version__}: {owner}.{attr} is gone; litequeue/huey_compat.py must follow it")


def test_their_shapes() -> None:
    app = MemoryHuey("seams")
    assert isinstance(huey_compat.registry(app), Registry)

    @app.task()
    def job() -> None: ...

    assert huey_compat.task_classes(app) == {f"{__name__}.job": job.task_class}
    consumer = Consumer(app, workers=1, check_worker_health=False)
    assert set(consumer._signal_actions) >= {signal.SIGINT, signal.SIGTERM}
    assert all(isinstance(v, tuple) and len(v) == 2 for v in consumer._signal_actions.values())
    assert consumer._signum is None and consumer._restart is False
    assert list(inspect.signature(consumer._handle_signal).parameters) == ["signum", "frame"]
    # Consumer.__init__ builds its workers and scheduler through these two hooks.
    init = inspect.getsource(Consumer.__init__)
    assert "self._create_worker()" in init and "self._create_scheduler()" in init


def test_no_other_module_reads_a_private_huey_attribute() -> None:
    names = {attr for _, attr in huey_compat.PRIVATE} | {
        "_post_execute", "_pre_execute", "_signal", "_immediate", "_emit", "_pipeline_results",
        "_locks", "_startup", "_shutdown", "_tasks_in_flight", "_timeout_handler", "_get_timestamp"}
    offenders = []
    for path in sorted([*(ROOT / "litequeue").rglob("*.py"), *(ROOT / "web").rglob("*.py")]):
        if path.name == "huey_compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in names:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
            if isinstance(node, ast.FunctionDef) and node.name in names:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: def {node.name}")
    assert offenders == []


def test_the_pin_covers_the_installed_huey() -> None:
    pin = re.search(r'"huey>=([\d.]+),<([\d.]+)"', (ROOT / "pyproject.toml").read_text())
    assert pin, "pyproject.toml must pin huey as huey>=x,<y"
    low, high = (tuple(int(p) for p in v.split(".")) for v in pin.groups())
    installed = tuple(int(p) for p in huey.__version__.split(".")[:3])
    assert low <= installed < high


class Recorder(MemoryStorage):
    def __init__(self, name: str = "huey", **kw: object) -> None:
        super().__init__(name)
        self.calls: list[tuple[str, object]] = []

    def enqueue(self, data: bytes, priority: float | None = None) -> None:
        self.calls.append(("enqueue", data))
        super().enqueue(data, priority)

    def add_to_schedule(self, data: bytes, ts: object) -> None:
        self.calls.append(("add_to_schedule", data))
        super().add_to_schedule(data, ts)


def test_enqueue_and_add_schedule_hand_the_serialized_task_to_the_storage() -> None:
    """LiteQueue writes its rows in ``storage.enqueue``/``add_to_schedule`` and finds the
    task by the bytes ``serialize_task`` just returned (no second unpickling)."""
    serialized: list[bytes] = []

    class Seen(Huey):
        storage_class = Recorder

        def serialize_task(self, task: object) -> bytes:
            data = super().serialize_task(task)
            serialized.append(data)
            return data

    app = Seen("seams")

    @app.task()
    def job(n: int) -> int:
        return n

    job(1)
    app.add_schedule(job.s(2))
    assert [(name, data is serialized[i]) for i, (name, data) in enumerate(app.storage.calls)] == [
        ("enqueue", True), ("add_to_schedule", True)]


def test_execute_runs_post_execute_hooks_before_it_enqueues_anything() -> None:
    """LiteQueue writes what a task's own code enqueues at once, and defers what Huey
    enqueues after it (retry, next pipeline step, error handler) to the job's ack; it tells
    the two apart by the post-execute hook, which must run first."""
    app = MemoryHuey("seams", utc=False)
    order: list[str] = []
    app.post_execute("probe")(lambda task, value, exc: order.append(f"post:{task.name}"))
    original = app.enqueue

    def enqueue(task: object) -> object:
        order.append(f"enqueue:{type(task).__name__}")
        return original(task)

    app.enqueue = enqueue  # type: ignore[method-assign]

    @app.task()
    def nxt(v: object) -> None: ...

    @app.task()
    def on_err(exc: object) -> None: ...

    @app.task(retries=1)
    def boom() -> None:
        raise ValueError("x")

    @app.task()
    def ok() -> int:
        return 1

    app.enqueue(ok.s().then(nxt))
    app.execute(app.dequeue())
    assert order == ["enqueue:ok", "post:ok", "enqueue:nxt"]
    app.flush()
    order.clear()
    app.enqueue(boom.s().error(on_err))
    app.execute(app.dequeue())
    assert order == ["enqueue:boom", "post:boom", "enqueue:on_err", "enqueue:boom"]
