"""Payloads that cannot be unpickled: random bytes, cut or bit-flipped real payloads, pickles of
the wrong thing or of classes nobody has, written over queued jobs' rows as another program (or
a bad disk) might. Each such job ends ``failed`` with its reason in one line; the consumer
carries on and runs the good jobs; ``jobs show``, ``jobs replay``, ``jobs retry`` and the page
answer in one line, never a traceback."""

from __future__ import annotations

import json
import pickle
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.conftest import Project
from tests.fuzz.hostile import JSON_VALUES, env_for, invoke, migrated_project

TASKS = """
from litequeue import LiteQueue

app = LiteQueue("payloads")

@app.task()
def good(i):
    return i
"""

CRAFTED = [
    b"", b".", b"\x80", b"\x80\x05", b"cno_such_module\nThing\n)\x81.", b"cbuiltins\nint\n(S'x'\ntR.",
    b"(" * 10000 + b".", b"]" * 10000 + b".", b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f", b"N.", b"I1\n.",
    pickle.dumps(None), pickle.dumps({"not": "a message"}), pickle.dumps(Exception("boom")),
]


class Queue:
    def __init__(self, project: Project) -> None:
        self.project = project

    def enqueue(self, n: int) -> list[str]:
        env = env_for(str(self.project.db), self.project.root)
        return [invoke(CliRunner(), ["enqueue", "good", "--args", f"[{i}]", "--app", "payload_tasks"], env,
                       self.project.root).stdout.strip() for i in range(n)]

    def data(self, job_id: str) -> bytes:
        rows = self.project.query("SELECT data FROM lq_ready WHERE job_id = ?", (job_id,))
        assert rows, (job_id, self.project.query("SELECT id, status FROM lq_job WHERE id = ?", (job_id,)))
        return bytes(rows[0][0])

    def poison(self, job_id: str, payload: bytes) -> None:
        with sqlite3.connect(self.project.db, timeout=30) as conn:  # the queue row and the ledger's copy
            conn.execute("UPDATE lq_ready SET data = ? WHERE job_id = ?", (payload, job_id))
            conn.execute("UPDATE lq_job SET payload = ? WHERE id = ?", (payload, job_id))

    def job(self, job_id: str) -> tuple[str, str | None]:
        return self.project.query("SELECT status, error FROM lq_job WHERE id = ?", (job_id,))[0]


@pytest.fixture(scope="module")
def queue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Queue]:
    with migrated_project(tmp_path_factory.mktemp("payloads"), "payload_tasks.py", TASKS) as project:
        yield Queue(project)


def mangle(original: bytes, how: str, at: int, value: object) -> bytes:
    if how == "cut":
        return original[: at % max(1, len(original))]
    if how == "flip":
        i = at % len(original)
        return original[:i] + bytes([original[i] ^ (1 << (at % 8))]) + original[i + 1:]
    if how == "other":
        return pickle.dumps(value)
    return original


@settings(max_examples=8)
@given(payloads=st.lists(st.one_of(st.binary(max_size=300), st.sampled_from(CRAFTED),
                                   st.tuples(st.sampled_from(["cut", "flip", "other"]), st.integers(0, 10_000),
                                             JSON_VALUES)),
                         min_size=1, max_size=3))
@example(payloads=CRAFTED[:3])
@example(payloads=CRAFTED[3:8])
# Found: b"\x80\x04\x8e\xff..." (a BINBYTES8 longer than memory) raised OverflowError, which
# killed the worker thread ("Process Worker-1 died!") and handed the job back to the queue
# to kill the next worker, forever.
@example(payloads=CRAFTED[8:])
# Found: the job's error spanned two lines ('A load persistent id instruction was encountered,\n
# but no persistent_load function was specified.'), in the ledger and in the log line.
@example(payloads=[b"P"])
def test_a_payload_that_cannot_be_unpickled_fails_that_job_only(queue: Queue, payloads: list[object]):
    runner = CliRunner()
    project = queue.project
    ids = queue.enqueue(len(payloads) + 1)
    control, poisoned = ids[0], ids[1:]
    for job_id, payload in zip(poisoned, payloads, strict=True):
        if isinstance(payload, tuple):
            payload = mangle(queue.data(job_id), *payload)
        queue.poison(job_id, payload)
    env = env_for(str(project.db), project.root)
    result = invoke(runner, ["run-consumer", "payload_tasks", "--burst", "-w", "1", "--no-migrate"], env, project.root)
    assert result.exit_code == 0, result.stderr
    assert queue.job(control) == ("succeeded", None)
    for job_id in poisoned:
        status, error = queue.job(job_id)
        # a flipped bit may leave a payload that still runs: then it ran, and says so
        assert status in ("failed", "succeeded"), (job_id, status, error)
        if status == "failed":
            assert error and "\n" not in error, (job_id, error)
        shown = invoke(runner, ["jobs", "show", job_id, "--json"], env, project.root)
        assert json.loads(shown.stdout)["id"] == job_id
        replay = invoke(runner, ["jobs", "replay", job_id, "--app", "payload_tasks"], env, project.root)
        assert replay.exit_code in (0, 1, 2), replay.stderr
    assert project.query("SELECT COUNT(*) FROM lq_ready")[0][0] == 0  # nothing stuck in the queue


def test_a_poisoned_payload_in_real_processes(tmp_path: Path):
    """The same through ``python -m litequeue``: a process worker, the replay, the retry, the page."""
    project = Project(tmp_path)
    project.write("payload_tasks.py", TASKS)
    queue = Queue(project)
    project.cli("migrate")
    out = project.python("import payload_tasks as t\nprint(t.good(0).id, t.good(1).id)")
    control, bad = out.stdout.split()
    queue.poison(bad, b"cno_such_module\nThing\n)\x81.")
    proc = subprocess.run([sys.executable, "-m", "litequeue", "run-consumer", "payload_tasks", "--burst", "-w", "1",
                           "-k", "process"], cwd=tmp_path, env=project.env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert queue.job(control) == ("succeeded", None)
    status, error = queue.job(bad)
    assert status == "failed" and "cannot be unpickled" in error and "no_such_module" in error, error
    replay = project.cli("jobs", "replay", bad, "--app", "payload_tasks", check=False)
    assert replay.returncode == 2 and len(replay.stderr.strip().splitlines()) == 1, replay.stderr
    assert "cannot be unpickled" in replay.stderr and "Traceback" not in replay.stderr, replay.stderr
    retried = project.cli("jobs", "retry", bad)
    assert retried.returncode == 0, retried.stderr
