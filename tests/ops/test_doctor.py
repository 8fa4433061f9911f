"""``litequeue doctor``: filesystems, inbox folders, APP import, inotify limits, config sources."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from litequeue.ops import doctor
from tests.conftest import BOTH_BACKENDS

MOUNTS = r"""/dev/vda / ext4 rw,relatime 0 0
server:/export /mnt/shared nfs4 rw,relatime,vers=4.2 0 0
//nas/jobs /mnt/nas\040jobs cifs rw 0 0
sshfs#me@host: /mnt/ssh fuse.sshfs rw 0 0
tmpfs /mnt/shared/local tmpfs rw 0 0
"""


@pytest.mark.parametrize(("path", "fstype", "level"), [
    ("/srv/app", "ext4", doctor.OK),
    ("/mnt/shared/queue", "nfs4", doctor.WARN),
    ("/mnt/nas jobs/q", "cifs", doctor.WARN),
    ("/mnt/ssh/q", "fuse.sshfs", doctor.WARN),
    ("/mnt/shared/local/q", "tmpfs", doctor.OK),  # the longest mount point wins
    ("/mnt/sharedfoo", "ext4", doctor.OK),  # a prefix of a name is not a parent folder
])
def test_network_filesystems_are_flagged(tmp_path, path, fstype, level):
    mounts = tmp_path / "mounts"
    mounts.write_text(MOUNTS)
    assert doctor.mount_of(path, str(mounts))[1] == fstype
    finding = doctor.check_filesystem(path, "database folder", "database", str(mounts))[0]
    assert finding.level == level
    if level == doctor.WARN:
        assert "SQLite's locking is unsafe" in finding.message


def test_this_machines_database_folder_is_local(tmp_path):
    findings = doctor.check_database(str(tmp_path / "lq.db"))  # the real /proc/mounts
    fs = [f for f in findings if "filesystem" in f.message]
    assert fs and fs[0].level == doctor.OK, fs


def test_inbox_folders_on_two_filesystems_fail(tmp_path):
    if not Path("/dev/shm").is_dir() or os.stat("/dev/shm").st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the temp folder")
    inbox = tmp_path / "inbox"
    (inbox / ".processing").mkdir(parents=True)
    (inbox / "failed").mkdir()
    assert [f.level for f in doctor.check_inbox(str(inbox))][0] == doctor.OK
    elsewhere = Path(os.path.realpath("/dev/shm")) / f"lq-done-{os.getpid()}"
    elsewhere.mkdir()
    try:
        (inbox / "done").symlink_to(elsewhere)  # a real mount elsewhere: moves would be copies
        first = doctor.check_inbox(str(inbox))[0]
        assert first.level == doctor.FAIL and "done on another filesystem" in first.message
    finally:
        elsewhere.rmdir()
    assert doctor.check_inbox(str(tmp_path / "nope"))[0].level == doctor.FAIL


def test_inotify_limits(tmp_path):
    real = doctor.check_inotify()[0]
    assert real.level in (doctor.OK, doctor.WARN, doctor.INFO) and real.topic == "inotify"
    for name, value in (("max_user_watches", 512), ("max_user_instances", 128), ("max_queued_events", 16384)):
        (tmp_path / name).write_text(f"{value}\n")
    low = doctor.check_inotify(str(tmp_path))[0]
    assert low.level == doctor.WARN and "max_user_watches is low" in low.message


@BOTH_BACKENDS
def test_doctor_command_reports_config_app_and_database(project):
    project.write("tasks.py", "from litequeue import LiteQueue\napp = LiteQueue('doc')\n"
                              "@app.task()\ndef hello():\n    return 1\n")
    project.write("other.py", "from litequeue import LiteQueue\napp = LiteQueue('o', db='elsewhere.db')\n")
    project.write("broken.py", "raise RuntimeError('does not import')\n")
    project.write("litequeue.toml", "app = 'tasks'\n[run-consumer]\nworkers = 2\n")
    project.cli("enqueue", "hello")
    proc = project.cli("doctor", "--json", check=False)
    data = json.loads(proc.stdout)
    by_topic: dict[str, list[str]] = {}
    for f in data["findings"]:
        by_topic.setdefault(f["topic"], []).append(f"{f['level']} {f['message']}")
    config = "\n".join(by_topic["config"])
    assert f"config file: {project.root / 'litequeue.toml'} (chosen by litequeue.toml)" in config
    assert "[run-consumer] sets workers" in config and "app = tasks (from config)" in config
    assert f"db = {project.env['LITEQUEUE_DB']} (from environment)" in config
    assert by_topic["app"] == ["ok tasks imports: app 'doc', 1 task(s)"]
    database = "\n".join(by_topic["database"])
    if project.backend == "sqlite":
        assert "ok journal mode wal" in database and "ok SQLite library" in database
    else:
        assert f"info database URL {project.pg_url} (server database)" in database
        assert "ok server: PostgreSQL " in database
    assert "unhealthy" in by_topic["health"][0]  # a queued job and no consumer
    assert proc.returncode == 1 and data["ok"] is False

    proc = project.cli("--app", "broken", "doctor", check=False)
    assert "fail  importing APP 'broken' raised RuntimeError: does not import" in proc.stdout
    proc = project.cli("--app", "other", "doctor", check=False)
    assert "other uses database elsewhere.db, but this command looked at" in proc.stdout
