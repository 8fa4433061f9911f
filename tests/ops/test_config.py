"""Configuration: flag > LITEQUEUE_* variable > config file > default, through the real CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from litequeue.cli import main

TASKS = """
from litequeue import LiteQueue
app = LiteQueue("cfg")

@app.task(queue="mail")
def hello(x):
    return x
"""


def workers_used(proc: subprocess.CompletedProcess[str]) -> int:
    found = re.search(r"(\d+) thread worker\(s\)", proc.stderr + proc.stdout)
    assert found, proc.stderr
    return int(found.group(1))


def run(project, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI with extra environment variables."""
    full = project.env
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "litequeue", *args], cwd=project.root, env=full,
                          capture_output=True, text=True, timeout=60)


def test_flag_beats_variable_beats_file_beats_default(project):
    project.write("tasks.py", TASKS)
    assert workers_used(run(project, "run-consumer", "--burst", "tasks")) == 1  # the default
    project.write("litequeue.toml", "[run-consumer]\nworkers = 3\n")
    assert workers_used(run(project, "run-consumer", "--burst", "tasks")) == 3
    env = {"LITEQUEUE_RUN_CONSUMER_WORKERS": "5"}
    assert workers_used(run(project, "run-consumer", "--burst", "tasks", env=env)) == 5
    assert workers_used(run(project, "run-consumer", "--burst", "-w", "7", "tasks", env=env)) == 7


def test_pyproject_table_and_explicit_config_file(project, tmp_path):
    project.write("tasks.py", TASKS)
    project.write("pyproject.toml", "[project]\nname = 'x'\n\n[tool.litequeue]\napp = 'tasks'\n"
                                    "[tool.litequeue.run-consumer]\nworkers = 2\n")
    # top-level app feeds run-consumer's APP argument
    assert workers_used(run(project, "run-consumer", "--burst")) == 2
    project.write("litequeue.toml", "app = 'tasks'\n[run-consumer]\nworker-type = 'thread'\nworkers = 4\n")
    assert workers_used(run(project, "run-consumer", "--burst")) == 4  # litequeue.toml wins over pyproject
    other = tmp_path / "elsewhere.toml"
    other.write_text("app = 'tasks'\n[run-consumer]\nworkers = 6\n")
    assert workers_used(run(project, "--config", str(other), "run-consumer", "--burst")) == 6
    assert workers_used(run(project, "run-consumer", "--burst", env={"LITEQUEUE_CONFIG": str(other)})) == 6


def test_top_level_settings_reach_the_library(project):
    """db and app from the file: the enqueue lands in the configured database."""
    project.write("tasks.py", TASKS)
    project.write("litequeue.toml", "db = 'configured.db'\napp = 'tasks'\ndurability = 'fast'\n")
    env = {"LITEQUEUE_DB": ""}
    proc = run(project, "enqueue", "hello", "--args", "[1]", env=env)
    assert proc.returncode == 0, proc.stderr
    assert (project.root / "configured.db").exists()
    assert not project.db.exists()
    doctor = run(project, "doctor", "--json", env=env)
    lines = [f["message"] for f in json.loads(doctor.stdout)["findings"] if f["topic"] == "config"]
    assert "db = configured.db (from config)" in lines
    assert "durability = fast (from config)" in lines
    # a variable beats the file, for top-level settings too
    proc = run(project, "enqueue", "hello", "--args", "[2]", env={"LITEQUEUE_DB": str(project.db)})
    assert proc.returncode == 0, proc.stderr
    assert project.query("SELECT COUNT(*) FROM lq_job")[0][0] == 1


@pytest.mark.parametrize(("text", "expected"), [
    ("[run-consumer]\nwrkers = 3\n", r"litequeue\.toml: \[run-consumer\] unknown key 'wrkers'; known keys: .*workers"),
    ("[run-consumer]\nworkers = 'many'\n", r"litequeue\.toml: \[run-consumer\] workers = 'many': expected an integer"),
    ("[run-consumer]\nworker-type = 'fiber'\n",
     r"litequeue\.toml: \[run-consumer\] worker-type = 'fiber': expected one of: thread, process"),
    ("[run-consumr]\nworkers = 3\n",
     r"litequeue\.toml: unknown key 'run-consumr'; .*command tables: .*\[run-consumer\]"),
    ("[jobs.list]\nlimit = 0\n", r"litequeue\.toml: \[jobs\.list\] limit = 0: expected an integer"),
    ("log-format = 'xml'\n", r"litequeue\.toml: log-format = 'xml': expected one of: text, json"),
    ("run-consumer = 4\n", r"litequeue\.toml: run-consumer must be a table"),
    ("workers = = 3\n", r"litequeue\.toml: not valid TOML"),
])
def test_bad_config_file_is_one_line_naming_file_and_key(project, text, expected):
    project.write("tasks.py", TASKS)
    project.write("litequeue.toml", text)
    proc = run(project, "run-consumer", "--burst", "tasks")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    assert re.search(expected, lines[0]), lines[0]
    assert "Traceback" not in proc.stderr


def test_missing_config_file_and_bad_variable_exit_2(project):
    project.write("tasks.py", TASKS)
    proc = run(project, "--config", "nope.toml", "status")
    assert proc.returncode == 2 and "config file nope.toml (from --config) does not exist" in proc.stderr
    proc = run(project, "status", env={"LITEQUEUE_CONFIG": "gone.toml"})
    assert proc.returncode == 2 and "(from LITEQUEUE_CONFIG)" in proc.stderr
    proc = run(project, "run-consumer", "--burst", "tasks", env={"LITEQUEUE_RUN_CONSUMER_WORKERS": "0"})
    assert proc.returncode == 2
    assert "Invalid value for environment variable LITEQUEUE_RUN_CONSUMER_WORKERS" in proc.stderr
    proc = run(project, "run-consumer", "--burst", "no_such_module")
    assert proc.returncode == 2 and "cannot import APP" in proc.stderr


def _options(command: click.Command, path: tuple[str, ...] = ()):
    for param in command.params:
        if isinstance(param, click.Option) and not param.is_eager:
            yield path, param
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _options(sub, (*path, name))


def test_every_option_shows_its_environment_variable_in_help():
    runner = CliRunner()
    checked = 0
    main.load_all()
    for path, param in _options(main):
        result = runner.invoke(main, [*path, "--help"], prog_name="litequeue")
        assert result.exit_code == 0, result.output
        # click wraps help lines: compare without whitespace
        flat = re.sub(r"\s+", "", result.output)
        if param.envvar:
            name = param.envvar if isinstance(param.envvar, str) else param.envvar[0]
        else:
            name = "_".join(["LITEQUEUE", *path, param.name or ""]).upper().replace("-", "_")
        assert f"envvar:{name}" in flat, f"{' '.join(path)} --{param.name}: {name} not in help"
        checked += 1
    assert checked > 20
    result = runner.invoke(main, ["run-consumer", "--help"])
    assert "LITEQUEUE_RUN_CONSUMER_WORKERS" in re.sub(r"\s+", "", result.output)
