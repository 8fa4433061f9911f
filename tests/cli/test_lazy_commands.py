"""The CLI imports a command's modules only when that command runs (``litequeue.cli.COMMANDS``):
the table must name, for each command, the module that defines it, and nothing may register a
command the table does not know (it would be missing from a fresh ``litequeue`` process)."""

from __future__ import annotations

import json
import subprocess
import sys

from litequeue.cli import COMMANDS, main


def test_every_command_comes_from_a_module_the_table_names_for_it() -> None:
    loaded = main.load_all()
    assert sorted(loaded) == sorted(COMMANDS)
    for name, command in loaded.items():
        defined_in = command.callback.__module__ if command.callback else None
        assert defined_in in {f"litequeue.cli.{m}" for m in COMMANDS[name]}, (name, defined_in)


def test_a_fresh_process_imports_only_the_modules_of_the_command_it_runs(tmp_path) -> None:
    probe = ("import json, sys\nfrom litequeue.cli import main\n"
             "try:\n    main(['--db', sys.argv[1], 'status'], prog_name='litequeue')\n"
             "except SystemExit:\n    pass\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.startswith('litequeue.cli.'))))")
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "none.db")], capture_output=True, text=True,
                         timeout=60)
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    commands = {"litequeue.cli." + m for m in ("jobs", "inbox", "limits")}
    helpers = {"litequeue.cli." + m for m in ("root", "config", "helpers", "progress", "replay", "migrate")}
    assert set(modules) <= commands | helpers, out.stdout + out.stderr
    assert commands <= set(modules)


def test_help_lists_every_command_of_the_table() -> None:
    out = subprocess.run([sys.executable, "-m", "litequeue", "--help"], capture_output=True, text=True, timeout=60)
    listed = {line.split()[0] for line in out.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == set(COMMANDS)


def test_status_gets_its_parts_however_its_module_was_loaded() -> None:
    # In one process (Django's call_command, click's runner), `jobs list` loads cli.jobs, which
    # defines status too; status must still load cli.inbox and cli.limits, which add to it.
    probe = ("import sys\nfrom litequeue.cli import main\n"
             "main.get_command(None, 'jobs')\n"
             "before = 'litequeue.cli.inbox' in sys.modules\n"
             "main.get_command(None, 'status')\n"
             "print(before, 'litequeue.cli.inbox' in sys.modules, 'litequeue.cli.limits' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "True", "True"], out.stdout + out.stderr
