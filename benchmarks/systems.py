"""The systems compared, and how each one's consumer is started (8 workers, its defaults)."""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from harness import BIN


@dataclass(frozen=True)
class System:
    name: str
    label: str
    module: str  # in benchmarks/tasks/
    consumer: tuple[str, ...]
    needs: tuple[str, ...]  # importable modules
    redis: bool = False
    bulk: bool = False
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, redis_url: str | None) -> list[str]:
        return [a.replace("{redis}", redis_url or "") for a in self.consumer]

    def missing(self) -> str | None:
        """Why this system cannot run here (None when it can)."""
        for mod in self.needs:
            if importlib.util.find_spec(mod) is None:
                return f"python package {mod!r} not installed (pip install -e '.[bench]')"
        exe = Path(self.consumer[0])
        if not exe.exists():
            return f"{exe.name} not found in {exe.parent}"
        if self.redis and shutil.which("redis-server") is None:
            return "redis-server not installed (apt-get install redis-server)"
        return None


def _bin(name: str) -> str:
    return str(BIN / name)


LITEQUEUE = ("litequeue",)
SYSTEMS: dict[str, System] = {s.name: s for s in (
    System("litequeue", "litequeue (full)", "bench_tasks",
           (_bin("litequeue"), "run-consumer", "bench_tasks", "-w", "8"), LITEQUEUE, bulk=True,
           env={"LITEQUEUE_DURABILITY": "full"}),
    System("litequeue-fast", "litequeue (fast)", "bench_tasks",
           (_bin("litequeue"), "run-consumer", "bench_tasks", "-w", "8"), LITEQUEUE, bulk=True,
           env={"LITEQUEUE_DURABILITY": "fast"}),
    System("litequeue-process", "litequeue (-k process -w 4)", "bench_tasks",
           (_bin("litequeue"), "run-consumer", "bench_tasks", "-k", "process", "-w", "4"), LITEQUEUE,
           env={"LITEQUEUE_DURABILITY": "full"}),
    System("huey-sqlite", "Huey SqliteHuey", "huey_tasks",
           (_bin("huey_consumer"), "huey_tasks.huey", "-w", "8"), ("huey",)),
    System("huey-redis", "Huey RedisHuey", "hueyredis_tasks",
           (_bin("huey_consumer"), "hueyredis_tasks.huey", "-w", "8"), ("huey", "redis"), redis=True),
    System("rq", "RQ (SimpleWorker x8)", "rq_tasks",
           (_bin("rq"), "worker-pool", "-n", "8", "-w", "rq.worker.SimpleWorker", "-u", "{redis}", "-q",
            "default"), ("rq", "redis"), redis=True),
    System("celery", "Celery (threads)", "celery_tasks",
           (_bin("celery"), "-A", "celery_tasks", "worker", "-P", "threads", "-c", "8", "-l", "warning",
            "--without-gossip", "--without-mingle", "--without-heartbeat"), ("celery", "redis"), redis=True),
    System("dramatiq", "Dramatiq", "dramatiq_tasks",
           (_bin("dramatiq"), "dramatiq_tasks", "--processes", "1", "--threads", "8"),
           ("dramatiq", "redis"), redis=True),
    System("arq", "arq", "arq_tasks", (_bin("arq"), "arq_tasks.WorkerSettings"), ("arq", "redis"), redis=True),
)}
QUICK = ("litequeue", "litequeue-process", "huey-sqlite")
