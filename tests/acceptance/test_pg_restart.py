"""The PostgreSQL server restarts under load: a private cluster of the test's own (never the
machine's server on 5432) is restarted with ``-m fast``, crashed with ``-m immediate`` and
stopped for 20 s while two consumers drain 2,000 jobs. Every job runs exactly once by its
effects, except where an attempt was interrupted; no consumer exits; each says in one line
that the database went away and in one when it came back; ``health``, enqueues and the status
page answer in one line while it is away and recover after, without a restart."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.conftest import Project, require_service, wait_for
from tests.support.pg_cluster import Cluster, find_bin, free_port, private_cluster

pytestmark = pytest.mark.slow

TASKS = """
import os, time
from litequeue import LiteQueue, current_job

app = LiteQueue("restarts")

@app.task()
def work(n):
    time.sleep(0.02)
    job = current_job()
    fd = os.open(os.environ["SIDE_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"run {n} {job.id} {job.attempt}\\n".encode())
    os.close(fd)
"""

TOTAL = 2000
WENT_AWAY = "went away"
CAME_BACK = "is back"


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if find_bin("initdb") is None or find_bin("pg_ctl") is None:
        require_service("PostgreSQL server binaries", "initdb/pg_ctl not found under /usr/lib/postgresql/*/bin")
    with private_cluster(tmp_path_factory.mktemp("pgcluster") / "pg") as running:
        yield running


def side(project: Project) -> list[list[str]]:
    path = project.root / "side.log"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def http(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=15) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


def test_restarts_crash_and_a_20s_stop_lose_no_job_and_everyone_recovers(project: Project, cluster: Cluster):
    project.write("tasks.py", TASKS)
    project.use_postgres(cluster.url)
    project.extra_env.update(SIDE_LOG=str(project.root / "side.log"))
    project.cli("migrate")
    project.python(f"import tasks\nwith tasks.app.bulk():\n    [tasks.work(i) for i in range(1, {TOTAL + 1})]")
    port = free_port()
    web_log = open(project.root / "web.log", "a")  # noqa: SIM115
    web = subprocess.Popen([sys.executable, "-m", "litequeue", "serve-web", "--port", str(port)], cwd=project.root,
                           env=project.env, stdout=web_log, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    project.procs.append(web)
    page = f"http://127.0.0.1:{port}"
    consumers = [project.start_consumer("tasks:app", "-w", "4", "--shutdown-timeout", "5", log=f"c{i}.log")
                 for i in range(2)]
    wait_for(lambda: http(page + "/api/overview")[0] == 200 if _listening(port) else False, 30,
             what="the status page")

    def done() -> int:
        return len({run[1] for run in side(project)})

    wait_for(lambda: done() >= 200, 60, what="200 jobs done")
    cluster.stop("fast")
    cluster.start()
    wait_for(lambda: done() >= 600, 60, what="600 jobs done after the fast restart")
    cluster.stop("immediate")
    cluster.start()
    wait_for(lambda: done() >= 1000, 60, what="1000 jobs done after the crash")
    assert done() < TOTAL, "the drain finished before the 20 s stop: make the jobs longer"

    cluster.stop("fast")
    stopped = time.monotonic()
    # An enqueue made now either waits and succeeds, or fails in one line within its timeout.
    patient = subprocess.Popen([sys.executable, "-m", "litequeue", "--busy-timeout", "40", "enqueue", "work",
                                "--args", "[0]", "--app", "tasks:app"], cwd=project.root, env=project.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    began = time.monotonic()
    hasty = project.cli("--busy-timeout", "3", "enqueue", "work", "--args", "[-1]", "--app", "tasks:app",
                        check=False, timeout=30)
    hasty_took = time.monotonic() - began
    assert hasty.returncode != 0 and hasty.stdout == "", hasty
    assert len(hasty.stderr.strip().splitlines()) == 1 and "Traceback" not in hasty.stderr, hasty.stderr
    assert "cannot reach" in hasty.stderr, hasty.stderr
    assert hasty_took < 3 + 5, f"the enqueue failed only after {hasty_took:.1f}s (timeout 3s)"

    health = project.cli("health", "--timeout", "2", check=False, timeout=30)
    assert health.returncode == 2, health
    # health's own format: the word, then one line per reason; the outage is one reason.
    assert health.stdout.splitlines()[0] == "unhealthy" and health.stderr == "", health
    reasons = health.stdout.splitlines()[1:]
    assert len(reasons) == 1 and "cannot reach the database" in reasons[0], health.stdout

    for path in ("/", "/api/overview", "/jobs"):
        status, _, body = http(page + path)
        assert status == 503, (path, status, body[:500])
        assert "database" in body and "Traceback" not in body, (path, body[:500])

    time.sleep(max(0.0, 20 - (time.monotonic() - stopped)))
    assert all(proc.poll() is None for proc in consumers), "a consumer exited while the database was away"
    cluster.start()

    out, err = patient.communicate(timeout=60)
    assert patient.returncode == 0, (out, err)
    assert err == "" and len(out.split()) == 1, (out, err)
    wait_for(lambda: http(page + "/api/overview")[0] == 200, 30, what="the status page to recover")
    wait_for(lambda: project.cli("health", check=False).returncode == 0, 30, interval=0.5,
             what="health to recover")

    def all_succeeded() -> bool:
        return project.query("SELECT COUNT(*) FROM lq_job WHERE status = 'succeeded'")[0][0] == TOTAL + 1

    try:
        wait_for(all_succeeded, 120, interval=0.25, what=f"{TOTAL + 1} jobs to succeed")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: jobs {project.statuses()}, queue "
                             f"{project.query('SELECT job_id, claimed_by, crashes FROM lq_ready')[:20]}") from None
    assert all(proc.poll() is None for proc in consumers), "a consumer exited"

    runs = side(project)
    assert {int(run[1]) for run in runs} == set(range(TOTAL + 1))  # 0 lost (and -1 never written)
    runs_of = Counter(run[2] for run in runs)
    interrupted_of = dict(project.query("SELECT job_id, COUNT(*) FROM lq_attempt WHERE outcome = 'interrupted' "
                                        "GROUP BY job_id"))
    unexplained = {job: (n, interrupted_of.get(job, 0)) for job, n in runs_of.items()
                   if n - 1 > interrupted_of.get(job, 0)}
    assert not unexplained, f"jobs run more often than interrupted (runs, interrupted attempts): {unexplained}"
    duplicates = len(runs) - len(runs_of)
    assert project.query("SELECT COUNT(*) FROM lq_attempt WHERE outcome NOT IN ('succeeded', 'interrupted')"
                         )[0][0] == 0

    for i in range(2):
        text = (project.root / f"c{i}.log").read_text()
        away = [line for line in text.splitlines() if WENT_AWAY in line]
        back = [line for line in text.splitlines() if CAME_BACK in line]
        assert len(away) == 3 and len(back) == 3, f"consumer {i}: {away} {back}\n{text[-4000:]}"
        assert "Traceback" not in text, text[-4000:]
    print(f"\n{TOTAL + 1} jobs, 3 restarts (fast, immediate, stopped 20 s), {duplicates} duplicate run(s), "
          f"{sum(interrupted_of.values())} interrupted attempt(s), 0 lost")
    for proc in consumers:
        proc.terminate()
    assert [proc.wait(30) for proc in consumers] == [0, 0]
    web.terminate()
    web.wait(10)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


