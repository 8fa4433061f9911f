"""A command run in-process leaves nothing behind: ``--no-migrate`` holds for that command only.

The CLI is run in-process by Django's management command, by click's test runner and by
anything embedding it; a flag that outlived its command made every later app in the process
refuse a new database ('schema version 0', 337 failures in one CI run).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from litequeue import LiteQueue
from litequeue.cli import main
from litequeue.store import migrations


def test_no_migrate_holds_for_its_command_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    old = tmp_path / "old.db"
    LiteQueue("scope", db=old).storage.close()  # a current database: --no-migrate accepts it
    (tmp_path / "scope_tasks.py").write_text("from litequeue import LiteQueue\napp = LiteQueue('scope')\n")
    result = CliRunner().invoke(main, ["--db", str(old), "run-consumer", "scope_tasks", "--burst", "-w", "1",
                                       "--no-migrate"], env={"LITEQUEUE_DB": None})
    assert result.exit_code == 0, result.output
    assert migrations.auto_migrate, "--no-migrate outlived its command"
    fresh = LiteQueue("scope", db=tmp_path / "new.db")
    fresh.storage.close()  # a new database is still migrated on first use


def test_the_settings_a_command_exports_are_put_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LITEQUEUE_DB", raising=False)
    monkeypatch.setenv("LITEQUEUE_DURABILITY", "full")
    db = tmp_path / "exported.db"
    result = CliRunner().invoke(main, ["--db", str(db), "--durability", "fast", "--busy-timeout", "2", "migrate"])
    assert result.exit_code == 0, result.output
    import os

    assert "LITEQUEUE_DB" not in os.environ
    assert os.environ["LITEQUEUE_DURABILITY"] == "full"
    assert "LITEQUEUE_BUSY_TIMEOUT" not in os.environ


def test_a_consumer_that_stopped_leaves_outage_reports_to_the_next_consumer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "scope_tasks.py").write_text("from litequeue import LiteQueue\napp = LiteQueue('scope')\n")
    runner = CliRunner()
    ran = runner.invoke(main, ["--db", str(tmp_path / "q.db"), "run-consumer", "scope_tasks", "--burst", "-w", "1"])
    assert ran.exit_code == 0, ran.output
    # A one-shot command answers in its own one line; the consumer's log line is not said here.
    gone = runner.invoke(main, ["status"], env={"LITEQUEUE_DB": "postgresql://127.0.0.1:1/x",
                                                "LITEQUEUE_BUSY_TIMEOUT": "0"})
    assert gone.exit_code == 1
    said = [line for line in gone.stderr.splitlines() if line.strip()]
    assert len(said) == 1, said


def test_a_consumer_run_in_process_puts_its_signal_handlers_back(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """It ignored SIGINT and SIGTERM after its shutdown, for the rest of the process: a
    terminal program started from that process afterwards inherited the ignored SIGINT and
    Ctrl-C no longer stopped it (``litequeue top`` in the shuffled-order run)."""
    import signal

    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "scope_tasks.py").write_text("from litequeue import LiteQueue\napp = LiteQueue('scope')\n")
    before = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL,
              signal.SIGHUP: signal.SIG_DFL}
    saved = {sig: signal.signal(sig, handler) for sig, handler in before.items()}
    try:
        ran = CliRunner().invoke(main, ["--db", str(tmp_path / "q.db"), "run-consumer", "scope_tasks", "--burst",
                                        "-w", "1"])
        assert ran.exit_code == 0, ran.output
        assert {sig: signal.getsignal(sig) for sig in before} == before
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
