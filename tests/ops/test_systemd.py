"""systemd units: their fields always, ``systemd-analyze verify`` where it exists."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from litequeue.ops import systemd

ROOT = Path(__file__).resolve().parents[2]


def units(**kwargs: object) -> dict[str, dict[str, dict[str, list[str]]]]:
    return {name: systemd.parse(text) for name, text in systemd.render(systemd.Settings(**kwargs)).items()}


def one(section: dict[str, list[str]], key: str) -> str:
    values = section[key]
    assert len(values) == 1, (key, values)
    return values[0]


def test_service_fields():
    parsed = units(command="/opt/lq/bin/litequeue", user="jobs", workdir="/srv/shop",
                   db="/var/lib/shop/lq.db", inbox="/srv/drop", app="tasks", shutdown_timeout=60)
    for name in (systemd.CONSUMER, systemd.INBOX, systemd.WEB):
        unit, service, install = parsed[name]["Unit"], parsed[name]["Service"], parsed[name]["Install"]
        assert one(unit, "PartOf") == "litequeue.target"
        assert one(install, "WantedBy") == "litequeue.target"
        assert one(service, "User") == "jobs" and one(service, "Group") == "jobs"
        assert one(service, "WorkingDirectory") == "/srv/shop"
        assert service["EnvironmentFile"][0] == "-/etc/litequeue/litequeue.env"
        env = service["Environment"]
        assert "LITEQUEUE_DB=/var/lib/shop/lq.db" in env and "LITEQUEUE_APP=tasks" in env
        assert one(service, "Restart") == "on-failure"
        assert one(service, "RestartPreventExitStatus") == str(systemd.EXIT_CONFIG)
        assert one(service, "KillMode") == "mixed"
        for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                           ("ProtectHome", "yes"), ("ProtectKernelTunables", "yes"),
                           ("ProtectControlGroups", "yes"), ("RestrictSUIDSGID", "yes")):
            assert one(service, key) == value, (name, key)
        # hardening that would break ordinary task code stays out
        for key in ("MemoryDenyWriteExecute", "PrivateDevices", "SystemCallFilter", "RestrictAddressFamilies",
                    "PrivateNetwork"):
            assert key not in service, (name, key)
        assert "-/var/lib/shop" in service["ReadWritePaths"]
    consumer = parsed[systemd.CONSUMER]["Service"]
    assert one(consumer, "Type") == "notify" and one(consumer, "WatchdogSec") == str(systemd.WATCHDOG_SEC)
    assert one(consumer, "ExecStart") == "/opt/lq/bin/litequeue run-consumer"
    assert "LITEQUEUE_RUN_CONSUMER_QUEUES=%i" in consumer["Environment"]
    assert "LITEQUEUE_RUN_CONSUMER_SHUTDOWN_TIMEOUT=60" in consumer["Environment"]
    assert int(one(consumer, "TimeoutStopSec")) > 60  # a graceful stop is never cut short
    # the instance's own file comes after the shared one, so it wins
    assert consumer["EnvironmentFile"] == ["-/etc/litequeue/litequeue.env", "-/etc/litequeue/consumer-%i.env"]
    assert "-/srv/drop" in consumer["ReadWritePaths"]
    assert one(parsed[systemd.CONSUMER]["Install"], "DefaultInstance") == "default"
    inbox = parsed[systemd.INBOX]["Service"]
    assert one(inbox, "ExecStart") == "/opt/lq/bin/litequeue watch-inbox /srv/drop"
    assert "-/srv/drop" in inbox["ReadWritePaths"]
    web = parsed[systemd.WEB]["Service"]
    assert one(web, "Type") == "notify" and one(web, "ExecStart") == "/opt/lq/bin/litequeue serve-web"
    assert "-/srv/drop" not in web["ReadWritePaths"]
    assert one(parsed[systemd.TARGET]["Install"], "WantedBy") == "multi-user.target"


def test_paths_under_home_or_tmp_relax_only_what_they_must():
    service = units(command="/home/ann/venv/bin/litequeue", workdir="/home/ann/shop",
                    db="/home/ann/shop/lq.db")[systemd.CONSUMER]["Service"]
    assert one(service, "ProtectHome") == "read-only" and "-/home/ann/shop" in service["ReadWritePaths"]
    service = units(db="/tmp/demo/lq.db")[systemd.CONSUMER]["Service"]
    assert one(service, "PrivateTmp") == "no"
    service = units(db="postgresql://lq@db/lq", inbox="/srv/drop")[systemd.WEB]["Service"]
    assert "ReadWritePaths" not in service  # nothing local to write


def test_repository_units_are_the_rendered_defaults():
    for name, text in systemd.render().items():
        assert (ROOT / "systemd" / name).read_text() == text, f"systemd/{name} is stale: re-render it"


def test_config_errors_exit_with_the_status_units_do_not_restart_on(project):
    """RestartPreventExitStatus must match what a configuration error really exits with."""
    project.write("litequeue.toml", "[run-consumer]\nworkers = 'lots'\n")
    proc = project.cli("run-consumer", "tasks", check=False)
    assert proc.returncode == systemd.EXIT_CONFIG
    proc = project.cli("run-consumer", "missing_module", check=False)
    assert proc.returncode == systemd.EXIT_CONFIG


def test_print_uses_this_installation(project, tmp_path):
    proc = project.cli("systemd", "--print", "--user", "svc", "--workdir", str(tmp_path), "--db", "data/lq.db",
                       "--inbox", "/srv/in", "--app", "tasks:app")
    out = proc.stdout
    for name in systemd.UNIT_NAMES:
        assert f"# ---- {name} ----" in out
    script = Path(sys.executable).parent / "litequeue"
    assert f"ExecStart={script} run-consumer" in out
    assert f"WorkingDirectory={tmp_path}" in out and "User=svc" in out
    assert f"LITEQUEUE_DB={project.root / 'data' / 'lq.db'}" in out  # made absolute
    assert "LITEQUEUE_APP=tasks:app" in out and "watch-inbox /srv/in" in out
    proc = project.cli("systemd", check=False)
    assert proc.returncode == 2 and "give --print or --output-dir" in proc.stderr


def test_systemd_analyze_verify(project, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (the fields are checked above)")
    out = tmp_path / "units"
    project.cli("systemd", "--output-dir", str(out), "--user", "root", "--workdir", str(tmp_path),
                "--db", str(tmp_path / "lq.db"), "--inbox", str(tmp_path / "inbox"))
    template = out / systemd.CONSUMER
    shutil.copy(template, out / "litequeue-consumer@mail.service")  # an instance, as systemctl would load it
    files = [str(out / n) for n in ("litequeue-consumer@mail.service", systemd.CONSUMER, systemd.INBOX,
                                    systemd.WEB, systemd.TARGET)]
    proc = subprocess.run([analyze, "verify", "--man=no", *files], capture_output=True, text=True, timeout=60,
                          cwd=out)
    assert proc.returncode == 0, proc.stderr
    # unknown keys and bad values are only warnings to systemd-analyze: there must be none
    assert proc.stderr.strip() == "", proc.stderr
    # the check can fail: the same tool flags a unit with a typo
    broken = out / "litequeue-web-typo.service"
    broken.write_text((out / systemd.WEB).read_text().replace("KillMode=mixed", "KilMode=mixed"))
    proc = subprocess.run([analyze, "verify", "--man=no", str(broken)], capture_output=True, text=True,
                          timeout=60, cwd=out)
    assert "Unknown key 'KilMode'" in proc.stderr
