"""Hostile input for the fuzz suite (Hypothesis strategies), and the one check every entry
point must pass: a clean result, or one line that says what is wrong; never a traceback."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from hypothesis import strategies as st

from tests.conftest import Project

#: Text as users and other programs hand it over: any unicode (control characters, line and
#: paragraph separators, NUL, lone surrogates excluded: argv cannot carry them) and the few
#: characters that break parsers most often.
NASTY = ["", " ", "\n", "\r\n", "\x00", "\x1e", "\u2028", "\u202e", "'", '"', "\\", "%", "%s", "{}", "[", "*",
         "..", "../", "/", "-", "--", "-1", "0", "1e309", "NaN", "null", "true", "🙂", "ﬃ", "\ufeff", "a" * 300]
TEXT = st.one_of(st.sampled_from(NASTY), st.text(st.characters(blacklist_categories=("Cs",)), max_size=40))
#: What argv can carry: no NUL byte (the kernel cuts the argument there).
ARG = TEXT.map(lambda s: s.replace("\x00", ""))

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12)
#: ``--args``/``--kwargs``: valid JSON of every shape, and broken JSON.
JSON_TEXT = st.one_of(JSON_VALUES.map(json.dumps), ARG, st.sampled_from(["[", "{", "[1,", '{"a":}', "[NaN]",
                                                                        "[Infinity]", '{"__proto__": 1}',
                                                                        "[" * 2000, "1" * 5000]))
CRON_FIELD = st.one_of(st.sampled_from(["*", "*/5", "0", "59", "60", "-1", "1-5", "5-1", "*/0", "1,2,3", "MON",
                                        "JAN", "?", "L", "1/2", "**", ",", "99999999999999999999"]),
                       st.text("0123456789*/,-", min_size=1, max_size=6))
CRON = st.one_of(st.lists(CRON_FIELD, min_size=1, max_size=7).map(" ".join),
                 st.sampled_from(["@daily", "@reboot", "", "* * * * * *", "\t* * * * *"]), ARG)
DURATION = st.one_of(st.sampled_from(["30s", "10m", "1h30m", "7d", "0s", "0", "-1s", "1x", "1e9d", "9" * 40 + "d",
                                      "1h1h", "h", "1.5h", "inf", "nan", "1 d", "١٠m"]),
                     st.from_regex(r"\A-?[0-9]{0,20}(\.[0-9]{0,3})?[smhdw]{0,2}\Z"), ARG)
DATE = st.one_of(st.datetimes().map(lambda d: d.isoformat()), st.sampled_from(
    ["2026-02-30", "2026-13-01T00:00:00", "0000-01-01", "9999-12-31T23:59:59Z", "yesterday", "1e12"]), ARG)


def job_id_like(real: Sequence[str]) -> st.SearchStrategy[str]:
    """Ids that are not quite a real one (a prefix, a suffix, another case), and plain junk."""
    base = st.sampled_from(list(real))
    return st.one_of(
        base.map(lambda i: i[:-1]), base.map(lambda i: i + "0"), base.map(str.upper), base.map(lambda i: " " + i),
        base.map(lambda i: i + "\n"), base.map(lambda i: i.replace("-", "")), base.map(lambda i: i + "%"), ARG)


#: Commands whose answer is a report on stdout with its own exit status (health: 1 degraded,
#: 2 unhealthy; doctor: 1 with warnings).
REPORTS = ("health", "doctor")


class Broken(AssertionError):
    pass


def check_cli(result: Result, args: Sequence[str]) -> Result:
    """A clean result (exit 0), or a usage/user error in one line on stderr; never an
    uncaught exception, never a traceback."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        tb = "".join(traceback.format_exception(result.exception))
        raise Broken(f"litequeue {list(args)!r} raised:\n{tb}")
    out, err = result.stdout, result.stderr
    # (a failed job's own traceback is data: ``jobs list --json`` shows it on stdout)
    assert "Traceback" not in err, f"litequeue {list(args)!r} printed a traceback:\n{out}{err}"
    reports = args and args[-1] in REPORTS and err == "" and out != ""
    if result.exit_code != 0 and not reports:
        one_error_line(err, args, result.exit_code)
    return result


def one_error_line(err: str, args: Sequence[str], code: int) -> None:
    """One line says what is wrong (click's usage errors add its "Usage:" and "Try" lines)."""
    lines = [line for line in err.splitlines() if line.strip()]
    said = [line for line in lines if not line.startswith(("Usage: ", "Try '"))]
    assert len(said) == 1, f"litequeue {list(args)!r} exited {code} with {len(said)} lines:\n{err}"


def invoke(runner: CliRunner, args: Sequence[str], env: Mapping[str, str | None], cwd: Path) -> Result:
    """The real ``litequeue`` command, in this process (click's runner), from ``cwd``."""
    import os

    from litequeue.cli import main

    before = os.getcwd()
    os.chdir(cwd)
    try:
        return check_cli(runner.invoke(main, list(args), env=dict(env), prog_name="litequeue"), args)
    finally:
        os.chdir(before)


def subprocess_cli(args: Sequence[str], env: Mapping[str, str], cwd: Path,
                   timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The same check on a real ``python -m litequeue`` process (one per entry point)."""
    proc = subprocess.run([sys.executable, "-m", "litequeue", *args], cwd=cwd, env=dict(env), capture_output=True,
                          text=True, timeout=timeout)
    assert "Traceback" not in proc.stderr, f"litequeue {list(args)!r}:\n{proc.stdout}{proc.stderr}"
    if proc.returncode != 0:
        one_error_line(proc.stderr, args, proc.returncode)
    return proc


def env_for(db: str, root: Path, **extra: Any) -> dict[str, str | None]:
    """The environment of one in-process run: this project's database and code, and every
    variable the group exports cleared afterwards (CliRunner restores what it was given)."""
    import os

    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("LITEQUEUE_")}
    env.update(LITEQUEUE_DB=db, LITEQUEUE_APP=None, LITEQUEUE_BUSY_TIMEOUT="5", LITEQUEUE_DURABILITY=None,
               LITEQUEUE_CONFIG=None, PYTHONPATH=str(root))
    env.update({k: (None if v is None else str(v)) for k, v in extra.items()})
    return env


@contextlib.contextmanager
def migrated_project(folder: Path, module: str, tasks: str) -> Iterator[Project]:
    """A project in ``folder`` with the tasks module ``module`` and a current database; its
    processes are killed after."""
    project = Project(folder)
    project.write(module, tasks)
    project.cli("migrate")
    try:
        yield project
    finally:
        project.kill_all()
