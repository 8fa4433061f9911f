"""The watcher SIGKILLed 10 times during a 1,000-file drop, restarted each time: every file
ends in done/ with exactly one succeeded job; nothing lost, nothing taken twice."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
from pathlib import Path

from tests.conftest import wait_for
from tests.inbox.helpers import TASKS, effects, files_in, inbox_rows, sha, start_watcher, write_atomic

FILES = 1000
KILLS = 10


def test_watcher_killed_ten_times_during_a_drop_loses_and_duplicates_nothing(project, tmp_path: Path) -> None:
    project.write("tasks.py", TASKS)
    inbox, staging = project.root / "inbox", tmp_path / "staging"
    inbox.mkdir()
    staging.mkdir()
    project.start_consumer("tasks", "-w", "4")
    expected: dict[str, str] = {}
    dropped = threading.Event()
    stop = threading.Event()

    def dropper() -> None:
        rng = random.Random(7)
        for i in range(FILES):
            if stop.is_set():
                return
            data = os.urandom(rng.randint(10, 20_000))
            name = f"f-{i:05d}.dat"
            expected[name] = sha(data)
            if i % 3:
                write_atomic(inbox / name, data)
            else:
                write_atomic(staging / name, data)
                os.rename(staging / name, inbox / name)
            if i % 20 == 19:
                stop.wait(0.15)  # pace the drop so it spans the ten kills
        dropped.set()

    def taken() -> int:
        rows = project.query("SELECT COUNT(*) FROM lq_inbox_file")
        return rows[0][0] if rows else 0

    rng = random.Random(11)
    thread = threading.Thread(target=dropper)
    thread.start()
    kills = during = 0
    try:
        for _ in range(KILLS):
            before = taken()
            proc = start_watcher(project, inbox, "--rule", "*.dat=ingest", "--settle", "0.3", "--rescan", "1")
            # kill it while it works: once it has taken something since it started (or, when the
            # drop is over and every file taken, once it has had time to look: nothing is left)
            wait_for(lambda b=before, p=proc: taken() > b or p.poll() is not None
                     or (dropped.is_set() and b >= FILES), 60, what="the watcher to take files")
            stop.wait(rng.uniform(0.0, 0.4))
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            kills += 1
            during += not dropped.is_set()
        thread.join(120)
        assert dropped.is_set()
        start_watcher(project, inbox, "--rule", "*.dat=ingest", "--settle", "0.3")
        wait_for(lambda: len(files_in(inbox / "done")) >= FILES, 180,
                 what=f"{FILES} files in done/ (now {len(files_in(inbox / 'done'))})")
        wait_for(lambda: project.statuses().get("succeeded", 0) >= FILES, 30, what="every job to succeed")
    finally:
        stop.set()
        thread.join(30)

    runs = effects(project.root)
    names = [r[0] for r in runs]
    done = files_in(inbox / "done")
    rows = inbox_rows(project)
    log = (project.root / "watcher.log").read_text()
    figures = {"files": FILES, "kills": kills, "kills_during_drop": during, "jobs": sum(project.statuses().values()),
               "duplicates": len(names) - len(set(names)), "losses": len(set(expected) - set(names)),
               "files_in_done": len(done),
               "retaken_after_kill": sum(int(x.split("re-took ")[1].split()[0]) for x in log.splitlines()
                                         if "re-took " in x)}
    print("inbox kill test:", json.dumps(figures))
    (project.root / "figures.json").write_text(json.dumps(figures))
    assert kills == KILLS
    assert figures["duplicates"] == 0 and figures["losses"] == 0
    assert {r[0]: r[1] for r in runs} == expected
    assert sorted(p.name for p in done) == sorted(expected)  # no suffixed second copy
    assert project.statuses() == {"succeeded": FILES}
    assert len(rows) == FILES and {r[1] for r in rows} == {"done"}
    assert len({r[2] for r in rows}) == FILES
    assert files_in(inbox / ".processing") == []
