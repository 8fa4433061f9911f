"""Hostile inbox file names: any unicode, bytes that are not UTF-8, newlines and control
characters, names as long as the filesystem allows, names that look like paths, options or
globs. Each file becomes one job that sees it, or stays in the inbox (ignored names); it is
never lost, never overwritten, and the watcher never wedges on a name."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from litequeue.inbox.layout import is_ignored_name
from litequeue.inbox.watcher import is_text
from tests.conftest import Project
from tests.fuzz.hostile import TEXT, env_for, invoke, migrated_project, subprocess_cli
from tests.inbox.helpers import TASKS

NAME_MAX = 255
_counter = itertools.count()


def _fits(name: bytes) -> bool:
    return 0 < len(name) <= NAME_MAX and b"/" not in name and b"\x00" not in name and name not in (b".", b"..")


#: File names as bytes (what the filesystem holds): unicode of every kind, raw bytes that are
#: not UTF-8, the longest names allowed, and names that look like something else.
NAMES = st.one_of(
    TEXT.map(lambda s: s.encode("utf-8", "surrogateescape")),
    st.binary(min_size=1, max_size=40),
    st.integers(1, NAME_MAX).map(lambda n: b"a" * n),
    st.integers(1, NAME_MAX // 4).map(lambda n: "🙂".encode() * n),
    st.sampled_from([b"-rf", b"--help", b"*", b"[a-z]", b"..x", b"~x", b".hidden", b"a\nb", b"a\rb", b"\xff\xfe",
                     b"C:\\x", b"x.part", b"x.PART", b"lq-123", b".processing", b"done", b"failed", b"%s%n",
                     b"\xe2\x80\xa8", b" ", b"a" * NAME_MAX, b"\xc3\xa9" * 127, b"e\xcc\x81"]),
).filter(_fits)


class Inboxes:
    def __init__(self, project: Project) -> None:
        self.project = project
        self.db = str(project.db)

    def fresh(self) -> Path:
        inbox = self.project.root / f"inbox-{next(_counter)}"
        inbox.mkdir()
        return inbox


@pytest.fixture(scope="module")
def inboxes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inboxes]:
    with migrated_project(tmp_path_factory.mktemp("inboxfuzz"), "inbox_tasks.py", TASKS) as project:
        yield Inboxes(project)


def every_file(folder: Path) -> dict[bytes, bytes]:
    """content -> name of every regular file under ``folder`` (bytes: names need not be UTF-8)."""
    found: dict[bytes, bytes] = {}
    for top, _, files in os.walk(os.fsencode(folder)):
        for name in files:
            if name == b".watcher.lock":  # the watcher's own (holds its pid)
                continue
            with open(os.path.join(top, name), "rb") as fh:
                found[fh.read()] = name
    return found


@settings(max_examples=12)
@given(names=st.lists(NAMES, min_size=1, max_size=6, unique=True))
@example(names=[b"a\nb", b"\xff\xfe", "🙂".encode() * 63, b"-rf", b"*"])
# Found: a name that is not UTF-8 failed the whole batch's write with a UnicodeEncodeError
# traceback ('surrogates not allowed'), every file of the batch left in the processing folder
# with no job, again at each retry; a file named .processing stopped the watcher with a
# FileExistsError traceback.
@example(names=[b"\xff\xfe", b"ok.txt"])
@example(names=[b".processing"])
@example(names=[b"done", b"x"])
@example(names=[b"a" * NAME_MAX, b"\xc3\xa9" * 127])
def test_every_file_becomes_one_job_or_stays_and_none_is_lost(inboxes: Inboxes, names: list[bytes]):
    runner = CliRunner()
    inbox = inboxes.fresh()
    contents = {}
    for i, name in enumerate(names):
        data = b"%d:" % i + name
        with open(os.path.join(os.fsencode(inbox), name), "wb") as fh:
            fh.write(data)
        contents[data] = name
    env = env_for(inboxes.db, inboxes.project.root)
    root = inboxes.project.root
    watched = invoke(runner, ["watch-inbox", str(inbox), "--oneshot", "--settle", "0.05", "--rule", "*=ingest",
                              "--app", "inbox_tasks"], env,
                     root)
    if watched.exit_code != 0:  # a file named like the watcher's own folders: refused before any move
        assert "is a file, but the watcher keeps its" in watched.stderr, watched.stderr
        assert every_file(inbox) == contents
        return
    invoke(runner, ["run-consumer", "inbox_tasks", "--burst", "-w", "1", "--no-migrate"], env, root)

    found = every_file(inbox)
    assert set(found) == set(contents), f"lost: {[contents[c] for c in set(contents) - set(found)]}"
    taken = {c for c, n in contents.items() if not is_ignored_name(os.fsdecode(n)) and is_text(os.fsdecode(n))}
    done = every_file(inbox / "done") if (inbox / "done").exists() else {}
    for data in taken:
        assert data in done, f"{contents[data]!r} is not in done/: {sorted(found.values())}"
    for data, name in contents.items():
        if data not in taken:
            assert (inbox / os.fsdecode(name)).exists(), f"the ignored {name!r} left the inbox"
    rows = inboxes.project.query("SELECT state, COUNT(*) FROM lq_inbox_file WHERE inbox = ? GROUP BY state",
                                 (str(inbox),))
    assert dict(rows) == ({"done": len(taken)} if taken else {}), rows
    status = invoke(runner, ["status"], env, root)  # the inbox's counts, and its untaken names
    assert status.exit_code == 0, status.stderr


def test_hostile_names_with_real_watcher_and_consumer_processes(tmp_path: Path):
    """The same through ``python -m litequeue`` processes, with two files per name (a clash in
    done/ for the longest names)."""
    project = Project(tmp_path)
    project.write("inbox_tasks.py", TASKS)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    names = [b"a\nb", "🙂".encode() * 63, b"-rf", b"a" * NAME_MAX, b"\xc3\xa9" * 127]
    failing = b"f" * (NAME_MAX - 5) + b".fail"  # its job fails: failed/ gets it and a .error.txt beside
    not_text = b"\xff\xfe.txt"  # left in the inbox, said in one line
    env = project.env
    for round_ in range(2):
        for name in [*names, failing] + ([not_text] if round_ == 0 else []):
            with open(os.path.join(os.fsencode(inbox), name), "wb") as fh:
                fh.write(b"%d:" % round_ + name)
        proc = subprocess_cli(["watch-inbox", str(inbox), "--oneshot", "--rule", "*.fail=picky", "--rule", "*=ingest",
                               "--app", "inbox_tasks"], env, tmp_path)
        assert proc.returncode == 0, proc.stderr
        proc = subprocess.run([sys.executable, "-m", "litequeue", "run-consumer", "inbox_tasks", "--burst", "-w", "2"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        # (the failing job's own traceback is logged by Huey: that is the task's error, not ours)
        assert proc.returncode == 0 and "ERROR litequeue" not in proc.stderr, proc.stderr
    done = every_file(inbox / "done")
    assert sorted(done) == sorted(b"%d:" % r + n for r in range(2) for n in names), sorted(done.values())
    failed = every_file(inbox / "failed")
    assert {b"0:" + failing, b"1:" + failing} <= set(failed), sorted(failed.values())
    assert sum(1 for name in failed.values() if name.endswith(b".error.txt")) == 2, sorted(failed.values())
    assert all(len(name) <= NAME_MAX for name in [*done.values(), *failed.values()])
    assert (inbox / os.fsdecode(not_text)).read_bytes() == b"0:" + not_text
    assert project.statuses() == {"succeeded": 2 * len(names), "failed": 2}
