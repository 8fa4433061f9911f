"""Hostile CLI options and arguments: ids, queue and task names, ``--args`` JSON, cron
expressions, durations. Each run is a clean result or one line on stderr, never a traceback,
and no job changes that the command did not name. In-process (click's runner) for speed, plus
one real process per entry point."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import Seeded
from tests.fuzz.hostile import ARG, CRON, DURATION, JSON_TEXT, env_for, invoke, job_id_like, subprocess_cli


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(seeded: Seeded, runner: CliRunner, *args: str) -> tuple[int, str, str]:
    result = invoke(runner, args, env_for(seeded.db, seeded.project.root), seeded.project.root)
    return result.exit_code, result.stdout, result.stderr


@settings(max_examples=60)
@given(data=st.data())
def test_ids_given_to_job_commands_change_nothing_they_do_not_name(seeded: Seeded, runner: CliRunner, data):
    before = seeded.jobs()
    ids = data.draw(st.lists(job_id_like(list(seeded.ids.values())), min_size=1, max_size=3), label="ids")
    command = data.draw(st.sampled_from([["jobs", "show"], ["jobs", "show", "--json"], ["jobs", "retry"],
                                         ["jobs", "cancel"], ["jobs", "replay"]]), label="command")
    args = [*command, *(ids[:1] if command[1] in ("show", "replay") else ids)]
    if command[1] == "replay":
        args += ["--app", "fuzz_tasks"]
    run(seeded, runner, *args)
    assert seeded.jobs() == before  # none of them is a real id


@settings(max_examples=80)
@given(queue=ARG, task=ARG, search=ARG, tag=ARG, limit=ARG,
       status=st.one_of(st.sampled_from(["failed", "queued", "FAILED", "nope"]), ARG))
@example(queue="mail", task="hello", search="%", tag="", limit="1", status="failed")
@example(queue="\x1e", task="_", search="\\", tag="\u2028", limit="-1", status="")
def test_list_filters_are_read_only_and_never_a_traceback(seeded: Seeded, runner: CliRunner, queue, task, search,
                                                          tag, limit, status):
    before = seeded.jobs()
    for args in (["jobs", "list", "--queue", queue, "--task", task, "--search", search, "--json"],
                 ["jobs", "list", "--tag", tag, "--limit", limit, "--status", status],
                 ["stats", "--task", task, "-Q", queue, "--json"]):
        code, out, _ = run(seeded, runner, *args)
        if code == 0 and "--json" in args:
            json.loads(out)
    assert seeded.jobs() == before


@settings(max_examples=80)
@given(task=st.one_of(st.sampled_from(["hello", "fuzz_tasks.hello", "boom"]), ARG), args=JSON_TEXT, kwargs=JSON_TEXT,
       queue=st.one_of(st.none(), ARG), priority=st.one_of(st.none(), ARG), delay=st.one_of(st.none(), ARG))
@example(task="hello", args="[1]", kwargs="{}", queue=None, priority=None, delay=None)
@example(task="hello", args='[1e309]', kwargs='{"x": NaN}', queue="\u2028", priority="1e3", delay="nan")
# Found: RecursionError and a traceback from the JSON parser ("[" * 2000), also in schedules add.
@example(task="hello", args="[" * 2000, kwargs="{}", queue=None, priority=None, delay=None)
@example(task="hello", args="[" * 900 + "]" * 900, kwargs='{"a": ' * 400 + "1" + "}" * 400, queue=None,
         priority=None, delay=None)
def test_enqueue_writes_one_job_or_nothing(seeded: Seeded, runner: CliRunner, task, args, kwargs, queue, priority,
                                           delay):
    before = seeded.jobs()
    argv = ["enqueue", task, "--args", args, "--kwargs", kwargs, "--app", "fuzz_tasks"]
    for flag, value in (("--queue", queue), ("--priority", priority), ("--delay", delay)):
        if value is not None:
            argv += [flag, value]
    code, out, _ = run(seeded, runner, *argv)
    after = seeded.jobs()
    new = set(after) - set(before)
    assert {k: after[k] for k in before} == before  # no existing job changed
    if code == 0:
        assert new == {out.strip()}, (argv, out, new)
    else:
        assert not new, (argv, new)


@settings(max_examples=80)
@given(name=ARG, cron=CRON, task=st.one_of(st.just("hello"), ARG), args=JSON_TEXT,
       zone=st.one_of(st.none(), st.sampled_from(["UTC", "Europe/Berlin", "Mars/Base", "../../etc/passwd",
                                                  "", "utc", "Etc/GMT+99"]), ARG))
@example(name="nightly", cron="0 2 * * *", task="hello", args="[]", zone="Europe/Berlin")
@example(name="x", cron="*/0 * * * *", task="hello", args="[]", zone=None)
@example(name="x", cron="99999999999999999999 * * * *", task="hello", args="[]", zone=None)
def test_schedules_add_stores_a_valid_schedule_or_says_why_not(seeded: Seeded, runner: CliRunner, name, cron,
                                                               task, args, zone):
    before = seeded.jobs()
    argv = ["schedules", "add", name, "--cron", cron, "--task", task, "--args", args, "--app", "fuzz_tasks"]
    if zone is not None:
        argv += ["--timezone", zone]
    code, _, _ = run(seeded, runner, *argv)
    if code == 0:
        listing = json.loads(run(seeded, runner, "schedules", "list", "--json")[1])
        assert any(s["name"] == name for s in listing), (argv, listing)
        assert run(seeded, runner, "schedules", "remove", name)[0] == 0
    assert seeded.jobs() == before


@settings(max_examples=60)
@given(since=DURATION, older=DURATION, statuses=st.one_of(st.just("failed"), ARG), by=ARG)
@example(since="9" * 40 + "d", older="1e9d", statuses="failed,succeeded", by="hour")
@example(since="-1s", older="0s", statuses=",", by="task")
def test_durations_are_parsed_or_refused_in_one_line(seeded: Seeded, runner: CliRunner, since, older, statuses,
                                                     by):
    before = seeded.jobs()
    run(seeded, runner, "stats", "--since", since, "--by", by)
    run(seeded, runner, "prune", "--older-than", older, "--status", statuses, "--dry-run", "--json")
    assert seeded.jobs() == before


@settings(max_examples=40)
@given(queues=st.lists(ARG, min_size=1, max_size=3))
@example(queues=["mail"])
@example(queues=["*"])
def test_pausing_any_queue_name_changes_no_job(seeded: Seeded, runner: CliRunner, queues):
    before, ready = seeded.jobs(), seeded.ready()
    run(seeded, runner, "pause", *queues)
    run(seeded, runner, "resume", *queues)
    assert seeded.jobs() == before and seeded.ready() == ready


def test_each_entry_point_in_a_real_process(seeded: Seeded):
    """One hostile input per entry point, through ``python -m litequeue`` itself."""
    env = {**seeded.project.env, "LITEQUEUE_BUSY_TIMEOUT": "5"}
    root = seeded.project.root
    before = seeded.jobs()
    hostile = [
        ["jobs", "show", seeded.ids["ok"] + "\n"],
        ["jobs", "retry", "\u2028", seeded.ids["queued"][:-1]],
        ["jobs", "cancel", "%"],
        ["jobs", "list", "--limit", "1e309"],
        ["enqueue", "hello", "--args", "[" * 2000, "--app", "fuzz_tasks"],
        ["enqueue", "\x1e", "--app", "fuzz_tasks"],
        ["schedules", "add", "n", "--cron", "*/0 * * * *", "--task", "hello", "--app", "fuzz_tasks"],
        ["stats", "--since", "9" * 40 + "d"],
        ["prune", "--older-than", "-1s", "--dry-run"],
        ["pause", "\x1e"],
    ]
    for argv in hostile:
        proc = subprocess_cli(argv, env, root)
        assert proc.returncode != 0 or argv[0] in ("pause", "jobs"), (argv, proc.stdout, proc.stderr)
    subprocess_cli(["resume", "\x1e"], env, root)
    assert seeded.jobs() == before
