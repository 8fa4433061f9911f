"""Hostile config files and environment variables: broken TOML, bytes that are not UTF-8, keys
no command has, values of every TOML type for every option, and junk in ``LITEQUEUE_*``. The
answer is the command's clean result or one line naming the file or variable, never a
traceback, and no job changes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import Seeded
from tests.fuzz.hostile import ARG, DURATION, TEXT, env_for, invoke, subprocess_cli

SECTIONS = ["", "run-consumer", "jobs.list", "jobs", "status", "health", "stats", "serve-web", "enqueue",
            "watch-inbox", "nope", "jobs.list.deeper"]
KEYS = ["db", "app", "log-format", "log_format", "durability", "busy-timeout", "verbose", "quiet", "logfile",
        "workers", "worker-type", "limit", "status", "json", "as-json", "max-queued-age", "since", "queues",
        "config", "help", "version", "", " ", "a.b", "\u2028", "LIMIT"]
TOML_SCALARS = st.one_of(st.integers(), st.floats(allow_nan=True), st.booleans(), TEXT, DURATION,
                         st.datetimes(max_value=dt.datetime(9999, 1, 1)), st.dates(), st.times())
TOML_VALUES = st.one_of(TOML_SCALARS, st.lists(TOML_SCALARS, max_size=3))


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(str(value), repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def toml_file(sections: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for key, value in sections.get("", {}).items():
        lines.append(f"{json.dumps(key, ensure_ascii=False)} = {toml_value(value)}")
    for name, table in sections.items():
        if not name:
            continue
        lines.append(f"[{name}]")
        lines += [f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


CONFIGS = st.one_of(
    st.dictionaries(st.sampled_from(SECTIONS), st.dictionaries(st.sampled_from(KEYS), TOML_VALUES, max_size=3),
                    max_size=3).map(toml_file).map(str.encode),
    st.binary(max_size=200),
    TEXT.map(str.encode),
    st.sampled_from([b"\xff\xfe", b"[", b"db = ", b"[[run-consumer]]\nworkers = 1", b"db = 1\ndb = 2",
                     "db = \"\u2028\"".encode(), b"\x00"]))


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@settings(max_examples=120)
@given(content=CONFIGS, command=st.sampled_from([["status"], ["jobs", "list", "--json"], ["health"],
                                                 ["stats"], ["doctor"]]))
@example(content=b'[jobs.list]\nlimit = "many"\n', command=["jobs", "list", "--json"])
@example(content=b'log-format = "xml"\n', command=["status"])
@example(content=b"[run-consumer]\nworkers = 1e999\n", command=["status"])
@example(content=b'busy-timeout = -1\n', command=["status"])
# Found: an OverflowError traceback (TOML's 1e999 is inf, where a whole number goes), and a
# UnicodeDecodeError traceback (a file that is not UTF-8).
@example(content=b"[run-consumer]\nworkers = inf\n", command=["jobs", "list", "--json"])
@example(content=b'[jobs.list]\nlimit = "\xff"\n', command=["jobs", "list", "--json"])
# Found: "AttributeError: 'int' object has no attribute 'strip'" (a flag given a number).
@example(content=b'"quiet" = 0\n', command=["status"])
@example(content=b'[jobs.list]\n"json" = 0\n', command=["status"])
def test_any_config_file_is_used_or_refused_in_one_line(seeded: Seeded, runner: CliRunner, tmp_path: Path,
                                                        content: bytes, command: list[str]):
    before = seeded.jobs()
    path = tmp_path / "litequeue.toml"
    path.write_bytes(content)
    env = env_for(seeded.db, seeded.project.root, LITEQUEUE_CONFIG=str(path))
    env["LITEQUEUE_DB"] = None  # the file may name it; the flag gives the seeded one
    invoke(runner, ["--db", seeded.db, *command], env, tmp_path)
    assert seeded.jobs() == before


VARIABLES = {
    "LITEQUEUE_BUSY_TIMEOUT": ARG, "LITEQUEUE_DURABILITY": ARG, "LITEQUEUE_LOG_FORMAT": ARG,
    "LITEQUEUE_VERBOSE": ARG, "LITEQUEUE_QUIET": ARG, "LITEQUEUE_JOBS_LIST_LIMIT": ARG,
    "LITEQUEUE_JOBS_LIST_STATUS": ARG, "LITEQUEUE_JOBS_LIST_AS_JSON": ARG, "LITEQUEUE_HEALTH_MAX_QUEUED_AGE": ARG,
    "LITEQUEUE_HEALTH_TIMEOUT": ARG, "LITEQUEUE_STATS_SINCE": DURATION, "LITEQUEUE_STATS_BY": ARG,
    "LITEQUEUE_APP": ARG, "LITEQUEUE_CONFIG": ARG.filter(lambda s: s.strip() != ""),
    "LITEQUEUE_DB": st.sampled_from(["", " ", "missing.db", "dir/", ".", "::", "file:x?mode=ro", ":memory:",
                                     "sqlite:///x.db", "redis://127.0.0.1:1/0", "postgresql://127.0.0.1:1/x",
                                     "postgresql://", "mysql://x", "postgresql://u:secret@127.0.0.1:1/x",
                                     "\u2028.db", "a" * 300]),
}
#: The read commands each variable reaches.
READ_COMMANDS = [["status"], ["jobs", "list"], ["health"], ["stats"]]


@settings(max_examples=120)
@given(env=st.fixed_dictionaries({}, optional=VARIABLES), command=st.sampled_from(READ_COMMANDS))
@example(env={"LITEQUEUE_CONFIG": "\x1e"}, command=["status"])
@example(env={"LITEQUEUE_DB": "postgresql://u:secret@127.0.0.1:1/x", "LITEQUEUE_BUSY_TIMEOUT": "0"},
         command=["status"])
@example(env={"LITEQUEUE_JOBS_LIST_LIMIT": "1e309"}, command=["jobs", "list"])
# Found: "peewee.InterfaceError: Error, database must be initialized before opening a connection."
@example(env={"LITEQUEUE_DB": "postgresql://", "LITEQUEUE_BUSY_TIMEOUT": ""}, command=["status"])
def test_any_environment_is_used_or_refused_in_one_line(seeded: Seeded, runner: CliRunner, tmp_path: Path,
                                                        env: dict[str, str], command: list[str]):
    before = seeded.jobs()
    full = env_for(seeded.db, seeded.project.root)
    full.update(env)
    if "LITEQUEUE_DB" in env and "://" in env["LITEQUEUE_DB"]:
        full.setdefault("LITEQUEUE_BUSY_TIMEOUT", "0")
        if not _number(full["LITEQUEUE_BUSY_TIMEOUT"]):
            full["LITEQUEUE_BUSY_TIMEOUT"] = "0"  # an unreachable server, retried for 0 s
    result = invoke(runner, command, full, tmp_path)
    assert "secret" not in result.stdout + result.stderr, result.stderr
    assert seeded.jobs() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "a read command created a file"


def _number(text: str | None) -> bool:
    try:
        return text is not None and 0 <= float(text) < 5
    except ValueError:
        return False


def test_config_and_environment_in_a_real_process(seeded: Seeded, tmp_path: Path):
    (tmp_path / "litequeue.toml").write_bytes(b"[jobs.list]\nlimit = \"\xff\"\n")
    env = {**seeded.project.env, "LITEQUEUE_DB": seeded.db}
    proc = subprocess_cli(["jobs", "list"], env, tmp_path)
    assert proc.returncode == 2 and "litequeue.toml" in proc.stderr, proc.stderr
    proc = subprocess_cli(["status"], {**env, "LITEQUEUE_BUSY_TIMEOUT": "\u2028"}, seeded.project.root)
    assert proc.returncode == 2 and "LITEQUEUE_BUSY_TIMEOUT" in proc.stderr, proc.stderr
