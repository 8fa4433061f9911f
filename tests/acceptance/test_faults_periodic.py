"""Fault injection: a periodic task with two consumers and a restart (issue 4, scenario 8).

Two consumers on one database, a task due every minute, three schedule slots, and one
consumer SIGKILLed and restarted within a slot's minute: exactly one run per slot.
Takes 1 to 2 real minutes (three slots from whenever it starts); on SQLite and on
PostgreSQL (two consumers on one server, as on two hosts).
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.acceptance.faultkit import Faults, say
from tests.conftest import BOTH_BACKENDS, wait_for

PERIODIC = """\
from litequeue import crontab

from tasks import app, record


@app.periodic_task(crontab(minute="*"))
def tick() -> None:
    record("tick")
"""
SLOTS = 3


def slot_after(slot: str, minutes: int) -> str:
    return (dt.datetime.fromisoformat(slot) + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M")


@pytest.mark.slow
@pytest.mark.clock
@BOTH_BACKENDS
def test_two_consumers_fire_a_periodic_task_once_per_minute(faults: Faults) -> None:
    project = faults.project
    project.write("ptasks.py", PERIODIC)
    a = project.start_consumer("ptasks", "-w", "2")
    b = project.start_consumer("ptasks", "-w", "2")
    faults.wait_ready(a)
    b_id = faults.wait_ready(b)

    def fired(slot: str) -> list[tuple[str, float]]:
        return project.query("SELECT job_id, created_at FROM lq_periodic_run WHERE slot = ?", (slot,))

    def succeeded(job_id: str) -> bool:
        return project.query("SELECT status FROM lq_job WHERE id = ?", (job_id,)) == [("succeeded",)]

    first = wait_for(lambda: project.query("SELECT MIN(slot) FROM lq_periodic_run")[0][0], 70,
                     what="the first periodic run")
    slots = [slot_after(first, n) for n in range(SLOTS)]
    restarted_in = None
    for n, slot in enumerate(slots):
        run = wait_for(lambda s=slot: fired(s), 75, what=f"the periodic run of slot {slot}")
        wait_for(lambda j=run[0][0]: succeeded(j), 20, what=f"the run of slot {slot} to succeed")
        if n == 1:
            # A restart within the slot's minute must not fire it again.
            faults.kill_group(a)
            a = project.start_consumer("ptasks", "-w", "2")
            a_id = faults.wait_ready(a)
            started = project.query("SELECT started_at FROM lq_consumer WHERE id = ?", (a_id,))[0][0]
            restarted_in = dt.datetime.fromtimestamp(started, dt.UTC).strftime("%Y-%m-%dT%H:%M")
    assert restarted_in == slots[1], "the restart did not happen within the slot's minute"
    # Both consumers lived well past the last slot's start: each had its chance to fire it.
    last_at = fired(slots[-1])[0][1]
    for cid in (a_id, b_id):
        wait_for(lambda c=cid: faults.heartbeat(c) > last_at + 2, 10, what=f"consumer {cid} to live on")
    assert a.poll() is None and b.poll() is None
    assert faults.stop(a) == 0 and faults.stop(b) == 0

    runs = project.query("SELECT slot, job_id FROM lq_periodic_run ORDER BY slot")
    assert [s for s, _ in runs] == slots, f"expected one run for each of {slots}, got {runs}"
    jobs = project.query("SELECT id, status FROM lq_job WHERE task = 'tick'")
    assert sorted(jobs) == sorted((j, "succeeded") for _, j in runs), "a periodic job ran outside its slot"
    lines = faults.side.lines()
    assert sorted(j for j, _, _ in lines) == sorted(j for _, j in runs), "a slot's job ran twice or not at all"
    say(f"8 periodic task ({project.backend}), 2 consumers + 1 restart within a slot: slots={len(slots)} "
        f"runs={len(lines)} duplicates=0 losses=0")
