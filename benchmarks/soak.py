"""A soak: everything litequeue does, at once, for N minutes, with kills (a script, not a test).

    python benchmarks/soak.py --minutes 10 [--db sqlite|postgres] [--kill-every 60] [--pg-url URL]

Real processes side by side on one database: five producers (single enqueues, bulk
``task.map``, batches with a fan-in callback, unique jobs, delayed jobs), a periodic task
(every minute), three consumers (``-w 4`` threads twice, ``-k process -w 2`` once), the inbox
(``litequeue watch-inbox``, a file dropped into it every second) and the status page
(``litequeue serve-web``, polled every second for ``/``, ``/api/overview`` and ``/metrics``).
Every ``--kill-every`` seconds a random consumer (but the first, ``steady``, whose curve is
the consumer's RSS) is SIGKILLed and started again; retention runs (``litequeue prune
--older-than``) every ``--prune-every`` seconds, each time after an export of the ledger
(``jobs list --json``) so that the final check still knows the jobs it deletes.

Each producer writes what it enqueued to ``produced-KIND.log`` (after the enqueue returned),
each task appends its job id to ``effects.log``. At the end the queues are drained and the
ledger is checked against both (see ``soak_checks.py``): 0 lost, 0 finished twice
(a job may have run more often than it has attempts only if it is a bug; a re-run after an
interrupted attempt is counted as a duplicate), each batch's callback once, the counters of
``status --json``, ``stats --json`` and ``/metrics`` equal to the ledger, RSS and open fds
of each long-lived process flat (last third against middle third), the database size bounded.
Exit 1 with one line per failed check; a summary table either way.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import free_port, load, tree_rss, uptime, workdir  # noqa: E402
from soak_checks import Run, check_all, flat_report  # noqa: E402

PRODUCERS = ("single", "bulk", "batch", "unique", "delayed")
CONSUMERS = {"steady": ["-w", "4"], "threads": ["-w", "4"], "processes": ["-k", "process", "-w", "2"]}
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


# -- the producers (run as ``soak.py --produce KIND``) ---------------------------------------

def produce(kind: str, root: Path) -> None:
    import soak_tasks as t

    out = open(root / f"produced-{kind}.log", "a", buffering=1)  # noqa: SIM115 - until exit
    stop = root / "stop"
    rng = random.Random(os.getpid())
    n = 0
    while not stop.exists():
        n += 1
        try:
            if kind == "single":
                out.write(f"{t.work(n).id}\n")
                pause = 0.2
            elif kind == "bulk":
                out.write(" ".join(r.id for r in t.work.map(range(40))) + "\n")
                pause = 4.0
            elif kind == "batch":
                with t.app.batch(f"soak {n}", on_complete=t.fanin) as b:
                    group = t.work.map(range(8), batch=b)
                out.write(f"{b.id} " + " ".join(r.id for r in group) + "\n")
                pause = 5.0
            elif kind == "unique":
                key = f"soak-unique-{os.getpid()}-{n}"
                ids = [t.app.enqueue(t.work.s(n), unique_key=key, unique_for=86400).id for _ in range(3)]
                out.write(f"{key} " + " ".join(ids) + "\n")
                pause = 2.0
            else:
                out.write(f"{t.work.schedule((n,), delay=rng.uniform(1, 8)).id}\n")
                pause = 1.0
        except Exception as exc:  # noqa: BLE001 - recorded, not fatal: the soak reports it
            out.write(f"error {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}\n")
            pause = 1.0
        time.sleep(pause)


# -- the processes of one run -------------------------------------------------------------

class Proc:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], root: Path) -> None:
        self.name, self.argv, self.env, self.root = name, argv, env, root
        self.kills = 0
        self.orphans = 0
        self.start()

    def start(self) -> None:
        log = open(self.root / f"{self.name}.log", "ab")  # noqa: SIM115 - the child holds it
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.root, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.started = time.time()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def sigkill(self) -> None:
        """SIGKILL the process itself (never its workers) and start it again; a worker
        process still alive 10 s later is an orphan (counted, then killed)."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.kills += 1
        deadline = time.monotonic() + 10
        while _group_alive(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _group_alive(self.proc.pid):
            self.orphans += 1
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.start()

    def stop(self, timeout: float = 30) -> None:
        stop_all([self], timeout)


def stop_all(procs: list[Proc], timeout: float = 20) -> None:
    """SIGTERM every process at once, wait for them together, then SIGKILL what is left of
    each process group (worker processes included)."""
    for p in procs:
        if p.alive():
            p.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(p.alive() for p in procs) and time.monotonic() < deadline:
        time.sleep(0.1)
    for p in procs:
        if _group_alive(p.proc.pid):
            os.killpg(p.proc.pid, signal.SIGKILL)
        try:
            p.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie leader still counts for killpg; look for a live member.
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def lq(env: dict[str, str], root: Path, *args: str, timeout: float = 300) -> str:
    proc = subprocess.run([sys.executable, "-m", "litequeue", *args], env=env, cwd=root,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"litequeue {' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return proc.stdout


def db_size(run: Run) -> int:
    if run.pg_url:
        return int(_pg(run.pg_url, "SELECT pg_database_size(current_database())")[0])
    db = run.root / "soak.db"
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def poll_page(base: str, stop: threading.Event, run: Run) -> None:
    while not stop.is_set():
        for path in ("/", "/api/overview", "/metrics"):
            try:
                with urllib.request.urlopen(base + path, timeout=30) as resp:
                    resp.read()
                    ok = resp.status == 200
            except (urllib.error.URLError, OSError):
                ok = False
            run.page_requests += 1
            if not ok:
                run.page_errors.append(f"{time.strftime('%H:%M:%S')} {path}")
        stop.wait(1.0)


def drop_files(inbox: Path, stage: Path, stop: threading.Event, run: Run) -> None:
    n = 0
    with open(run.root / "produced-inbox.log", "a", buffering=1) as out:
        while not stop.is_set():
            n += 1
            name = f"doc-{n:06d}.txt"
            (stage / name).write_text(f"file {n}\n" * 20)
            os.rename(stage / name, inbox / name)  # complete when it appears
            out.write(name + "\n")
            stop.wait(1.0)


def snapshot(run: Run, env: dict[str, str]) -> set[str]:
    """Every job the ledger has now (the newest 100,000), merged into the run's record."""
    jobs = json.loads(lq(env, run.root, "jobs", "list", "--json", "--limit", "100000"))
    for job in jobs:
        run.ledger[job["id"]] = job
    return {job["id"] for job in jobs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-url", default=None,
                        help="an empty database to use as it is (default: one made on the local server, dropped after)")
    parser.add_argument("--kill-every", type=float, default=60)
    parser.add_argument("--prune-every", type=float, default=None, help="seconds (default: the run's length / 6)")
    parser.add_argument("--sample-every", type=float, default=None, help="seconds (default: the run's length / 30)")
    parser.add_argument("--dir", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the run's folder")
    parser.add_argument("--produce", choices=PRODUCERS, help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a SIGTERM still stops every child
    if args.produce:
        produce(args.produce, Path(args.root))
        return 0
    seconds = args.minutes * 60
    prune_every = args.prune_every or max(15.0, seconds / 6)
    sample_every = args.sample_every or max(2.0, seconds / 30)
    print(f"# soak: {args.minutes:g} min on {args.db}, a kill every {args.kill_every:g} s, prune every "
          f"{prune_every:g} s; {uptime()}", flush=True)
    made_db = None
    with workdir(args.dir, "soak", keep=args.keep) as root:
        pg_url = args.pg_url
        if args.db == "postgres" and not pg_url:
            made_db = "lqsoak_" + uuid.uuid4().hex[:10]
            _pg_admin(f'CREATE DATABASE "{made_db}"')
            pg_url = PG_ADMIN.rsplit("/", 1)[0] + "/" + made_db
        try:
            run = Run(root=root, pg_url=pg_url, seconds=seconds)
            result = soak(run, args.kill_every, prune_every, sample_every)
        finally:
            if made_db:
                _pg_admin(f'DROP DATABASE IF EXISTS "{made_db}" WITH (FORCE)')
    return result


def _pg_admin(sql: str) -> None:
    _pg(PG_ADMIN, sql)


def _pg(url: str, sql: str) -> Any:
    import psycopg2

    conn = psycopg2.connect(url, connect_timeout=5)
    try:
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchone() if cur.description else None
    finally:
        conn.close()


def soak(run: Run, kill_every: float, prune_every: float, sample_every: float) -> int:
    root = run.root
    inbox, stage = root / "inbox", root / "stage"
    inbox.mkdir()
    stage.mkdir()
    env = dict(os.environ, LITEQUEUE_DB=run.pg_url or str(root / "soak.db"), SOAK_EFFECTS=str(root / "effects.log"),
               PYTHONPATH=os.pathsep.join([str(HERE / "tasks"), str(HERE), os.environ.get("PYTHONPATH", "")]))
    env.pop("LITEQUEUE_APP", None)
    (root / "effects.log").touch()
    lq(env, root, "migrate")
    py, port = sys.executable, free_port()
    started: list[Proc] = []
    try:
        return _soak(run, env, py, port, started, kill_every, prune_every, sample_every)
    finally:
        stop_all(started)


def _soak(run: Run, env: dict[str, str], py: str, port: int, started: list[Proc], kill_every: float,
          prune_every: float, sample_every: float) -> int:
    root, seconds = run.root, run.seconds
    inbox, stage = root / "inbox", root / "stage"
    web = Proc("web", [py, "-m", "litequeue", "serve-web", "soak_tasks", "--port", str(port), "--threads", "4"],
               env, root)
    watcher = Proc("inbox", [py, "-m", "litequeue", "watch-inbox", str(inbox), "--app", "soak_tasks",
                             "--rule", "*.txt=ingest"], env, root)
    consumers = {name: Proc(f"consumer-{name}", [py, "-m", "litequeue", "run-consumer", "soak_tasks", *opts],
                            env, root) for name, opts in CONSUMERS.items()}
    producers = {k: Proc(f"producer-{k}", [py, str(HERE / "soak.py"), "--produce", k, "--root", str(root)], env, root)
                 for k in PRODUCERS}
    longlived = {"web": web, "inbox": watcher, "consumer steady": consumers["steady"],
                 **{f"producer {k}": p for k, p in producers.items()}}
    started.extend([*producers.values(), *consumers.values(), watcher, web])
    base = f"http://127.0.0.1:{port}"
    _wait_http(base + "/livez", web)
    stop = threading.Event()
    threads = [threading.Thread(target=poll_page, args=(base, stop, run), daemon=True),
               threading.Thread(target=drop_files, args=(inbox, stage, stop, run), daemon=True)]
    for t in threads:
        t.start()
    rng = random.Random()
    start = time.monotonic()
    next_kill, next_prune, next_sample, next_print = kill_every, prune_every, 0.0, seconds / 3
    try:
        while (now := time.monotonic() - start) < seconds:
            if now >= next_sample:
                run.sample(now, {n: (tree_rss(p.proc.pid) if p.alive() else -1, fds(p.proc.pid))
                                 for n, p in longlived.items()}, db_size(run), os.getloadavg()[0])
                next_sample += sample_every
            if now >= next_kill:
                victim = rng.choice(["threads", "processes"])
                consumers[victim].sigkill()
                run.events.append(f"{now:6.0f}s SIGKILL consumer {victim}")
                next_kill += kill_every
            if now >= next_prune:
                snapshot(run, env)
                out = lq(env, root, "prune", "--older-than", f"{int(prune_every)}s").strip()
                run.events.append(f"{now:6.0f}s prune: {out.splitlines()[-1] if out else ''}")
                run.prunes += 1
                if run.first_prune is None:
                    run.first_prune = now
                next_prune += prune_every
            if now >= next_print:
                print(flat_report(run), flush=True)
                next_print += seconds / 3
            for n, p in longlived.items():
                if not p.alive() and n not in run.exited:
                    run.exited[n] = p.proc.returncode
            time.sleep(0.2)
        # The end: no new work, every queue drained, then the counters and the ledger.
        (root / "stop").touch()
        stop.set()
        for p in producers.values():
            p.proc.wait(60)
        for t in threads:
            t.join(35)
        run.drained = _drain(env, root, inbox)
        # Stopped before the counters are read: a periodic job fired at a minute boundary
        # between the reads below was in the ledger but not in /metrics ("1,211 = 1,212").
        stop_all([*consumers.values(), watcher], 30)
        run.metrics = _get(base + "/metrics")
        run.status = json.loads(lq(env, root, "status", "--json"))
        run.stats = json.loads(lq(env, root, "stats", "--json", "--since", "7d"))
        run.final = snapshot(run, env)
        run.load_end = load()
        run.ended = time.monotonic() - start
    finally:
        (root / "stop").touch()
        stop.set()
        stop_all([*producers.values(), *consumers.values(), watcher, web])
    run.kills = {n: c.kills for n, c in consumers.items()}
    run.orphans = sum(c.orphans for c in consumers.values())
    print(flat_report(run), flush=True)
    failures = check_all(run)
    for line in run.events:
        print("  " + line)
    print(run.table())
    for line in failures:
        print(f"FAILED: {line}")
    print(f"soak: {'FAILED' if failures else 'passed'} ({len(failures)} failed checks)")
    return 1 if failures else 0


def _wait_http(url: str, proc: Proc) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.alive():
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer; see {proc.root / (proc.name + '.log')}")


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=60) as resp:
        return resp.read().decode()


def _drain(env: dict[str, str], root: Path, inbox: Path, timeout: float = 180) -> str:
    """Wait until no job is waiting, scheduled, queued, running or retrying and the inbox is
    empty: "" then, else what was still there."""
    deadline = time.monotonic() + timeout
    left = "not checked"
    while time.monotonic() < deadline:
        status: dict[str, Any] = json.loads(lq(env, root, "status", "--json"))
        busy = {f"{name} {k}": q[k] for name, q in status["queues"].items()
                for k in ("waiting", "scheduled", "queued", "running", "retrying") if q.get(k)}
        files = [p.name for p in inbox.iterdir() if p.is_file() and not p.name.startswith(".")]
        files += [p.name for p in (inbox / ".processing").iterdir() if not p.name.startswith(".")]
        left = ", ".join([f"{k} {v}" for k, v in busy.items()] + files[:5])
        if not left:
            return ""
        time.sleep(1)
    return left


if __name__ == "__main__":
    sys.exit(main())
