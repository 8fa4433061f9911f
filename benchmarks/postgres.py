"""PostgreSQL run: litequeue against the PostgreSQL-native queues on the local server.

    python benchmarks/postgres.py [--quick] [--only NAME,...] [--repeats N] [--consumers 1,2,4]
    python benchmarks/run.py --postgres [the same options]

For each system and each consumer count (1, 2 and 4 consumer processes, 8 workers each, on
one database): the drain rate of N no-op jobs and the pickup latency of a job enqueued to
consumers idle for 2 s. Every system gets a database of its own on the server
(``--pg-url``'s, default ``postgresql://postgres@127.0.0.1:5432/test``: trust auth), created
for the measurement and dropped after it, with its own schema set up by its own command.
Systems run interleaved (repeat 1 of every system and count, then repeat 2, ...) so the
ratios litequeue ÷ peer are paired repeat by repeat, as in ``run.py``. Prints a markdown
table and writes the JSON under ``benchmarks/results/``.

How a drain is timed: the consumers start on an empty queue and idle until their CPU
settles (each connected and listening), then the driver writes the N jobs in one
transaction (each system's bulk API) and the rate is (N - 1) / (last start - first start),
so start-up is left out and every consumer count starts from the same state.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from harness import (
    BIN,
    CLK_TCK,
    HERE,
    TASKS_DIR,
    Consumer,
    Driver,
    Marks,
    load,
    summary,
    tree_ticks,
    uptime,
    workdir,
)
from pairing import brief, cell, paired, pooled_pickup

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class PgSystem:
    name: str
    label: str
    module: str  # in benchmarks/tasks/
    consumer: tuple[str, ...]  # one consumer process; ``{url}`` is the database URL
    setup: tuple[tuple[str, ...], ...]  # commands that create the system's schema
    needs: tuple[str, ...]  # importable modules
    python: tuple[int, int] = (3, 11)

    def argv(self, argv: tuple[str, ...], url: str) -> list[str]:
        return [a.replace("{url}", url) for a in argv]

    def missing(self) -> str | None:
        """Why this system cannot run here (None when it can)."""
        if sys.version_info[:2] < self.python:
            return (f"needs Python >= {self.python[0]}.{self.python[1]} (this is {platform.python_version()}), "
                    "so it does not install here")
        for mod in self.needs:
            if importlib.util.find_spec(mod) is None:
                return f"python package {mod!r} not installed (pip install -e '.[bench]')"
        if not self.consumer:
            return "not wired up: no interpreter here it installs on, to write and check its tasks module"
        exe = Path(self.consumer[0])
        if not exe.exists():
            return f"{exe.name} not found in {exe.parent}"
        return None


def _bin(name: str) -> str:
    return str(BIN / name)


PG_SYSTEMS: dict[str, PgSystem] = {s.name: s for s in (
    PgSystem("litequeue", "litequeue", "bench_tasks",
             (_bin("litequeue"), "run-consumer", "bench_tasks", "-w", "8"),
             ((_bin("litequeue"), "migrate"),), ("litequeue",)),
    PgSystem("procrastinate", "procrastinate", "procrastinate_tasks",
             (_bin("procrastinate"), "--app=procrastinate_tasks.app", "worker", "--concurrency", "8"),
             ((_bin("procrastinate"), "--app=procrastinate_tasks.app", "schema", "--apply"),),
             ("procrastinate",)),
    PgSystem("pgqueuer", "pgqueuer", "pgqueuer_tasks",
             (sys.executable, str(TASKS_DIR / "pgqueuer_tasks.py")),  # = pgq run pgqueuer_tasks:main
             ((_bin("pgq"), "--pg-dsn", "{url}", "install"),), ("pgqueuer", "asyncpg", "psycopg")),
    # The Python port of Oban (PyPI ``oban``) requires Python >= 3.12.
    PgSystem("oban", "Oban (Python)", "", (), (), ("oban",), python=(3, 12)),
)}


@dataclass
class PgConfig:
    jobs: int
    samples: int
    idle: float
    repeats: int
    drain_timeout: float
    consumers: list[int]
    admin_url: str
    dir: str | None


# -- databases ----------------------------------------------------------------------------

def _connect(url: str) -> Any:
    """An autocommit admin connection (psycopg 3 if installed, else psycopg2)."""
    try:
        import psycopg

        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except ImportError:
        import psycopg2

        conn = psycopg2.connect(url, connect_timeout=5)
        conn.autocommit = True
        return conn


def server_version(admin_url: str) -> str:
    conn = _connect(admin_url)
    try:
        cur = conn.cursor()
        cur.execute("SHOW server_version")
        return str(cur.fetchone()[0])
    finally:
        conn.close()


@contextlib.contextmanager
def fresh_database(admin_url: str, name: str) -> Iterator[str]:
    """A new database on the server of ``admin_url`` (its URL), dropped afterwards."""
    db = f"lqbench_{name}_{os.getpid()}_{time.time_ns() % 10**9}".replace("-", "_")
    conn = _connect(admin_url)
    try:
        conn.cursor().execute(f'CREATE DATABASE "{db}"')
        parts = urlsplit(admin_url)
        try:
            yield urlunsplit(parts._replace(path=f"/{db}"))
        finally:
            cur = conn.cursor()
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db,))
            cur.execute(f'DROP DATABASE IF EXISTS "{db}"')
    finally:
        conn.close()


# -- one measurement ----------------------------------------------------------------------

def environment(url: str, tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(BENCH_MARKS=str(tmp / "marks"), LITEQUEUE_DB=url, BENCH_PG_URL=url, PGDSN=url,
               PYTHONPATH=os.pathsep.join(filter(None, [str(TASKS_DIR), env.get("PYTHONPATH")])))
    return env


def settle(consumers: list[Consumer], least: float = 2.0, most: float = 30.0) -> None:
    """Wait until every consumer started and idles: at least ``least`` s, then until their
    CPU over half a second falls under 10 % of a core each (start-up and imports done)."""
    t0 = time.monotonic()
    time.sleep(least)
    while time.monotonic() - t0 < most:
        before = sum(tree_ticks(c.pid) for c in consumers)
        time.sleep(0.5)
        if not all(c.alive() for c in consumers):
            raise RuntimeError("a consumer exited while starting (see consumer.log)")
        if sum(tree_ticks(c.pid) for c in consumers) - before <= 0.05 * CLK_TCK * len(consumers):
            return


def pickup(driver: Driver, marks: Marks, consumers: list[Consumer], idle: float) -> tuple[float, int, float]:
    """One sample: idle ``idle`` s (counting the consumers' CPU), enqueue one job; return
    (seconds from just before the enqueue to the task's mark, ticks, seconds idled)."""
    c0, w0 = sum(tree_ticks(c.pid) for c in consumers), time.monotonic()
    time.sleep(idle)
    ticks, waited = sum(tree_ticks(c.pid) for c in consumers) - c0, time.monotonic() - w0
    before = marks.count()
    t0 = driver.ask("one")
    if not marks.wait_count(before + 1, timeout=max(30.0, idle)):
        raise RuntimeError("the pickup job did not run within 30 s")
    return marks.times(before)[0] - t0, ticks, waited


def one_run(system: PgSystem, consumers: int, cfg: PgConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"load_before": load()}
    with workdir(cfg.dir, f"pg-{system.name}") as tmp, fresh_database(cfg.admin_url, system.name) as url:
        env = environment(url, tmp)
        out["database"] = urlsplit(url).path.lstrip("/")
        for argv in system.setup:
            proc = subprocess.run(system.argv(argv, url), env=env, cwd=tmp, capture_output=True, text=True,
                                  timeout=120)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(argv[:3])} exited {proc.returncode}: {proc.stderr[-500:]}")
        marks = Marks(tmp / "marks")
        driver = Driver(system.module, env, tmp)
        procs: list[Consumer] = []
        try:
            procs = [Consumer(system.argv(system.consumer, url), env, tmp) for _ in range(consumers)]
            settle(procs)
            driver.ask("single 1")  # the producer's connection is open before the drain
            if not marks.wait_count(1, timeout=60):
                raise RuntimeError(f"the warm-up job did not run (see {tmp / 'consumer.log'})")
            driver.ask(f"bulk {cfg.jobs}")
            # A system slower than jobs / drain_timeout is measured over the jobs it ran by then.
            out["drained"] = cfg.jobs
            if not marks.wait_count(cfg.jobs + 1, timeout=cfg.drain_timeout, poll=0.01):
                out["drained"] = marks.count() - 1
                if out["drained"] < max(2, cfg.jobs // 10):
                    raise RuntimeError(f"drain stopped at {marks.count()} of {cfg.jobs + 1} jobs")
            times = marks.times(1)[:out["drained"]]
            out["drain_per_s"] = (len(times) - 1) / (max(times) - min(times))
            if out["drained"] < cfg.jobs:  # the rest must still run before the pickups
                out["partial"] = True
                if not marks.wait_count(cfg.jobs + 1, timeout=600, poll=0.05):
                    raise RuntimeError(f"drain stopped at {marks.count()} of {cfg.jobs + 1} jobs")
            if not all(p.alive() for p in procs):
                raise RuntimeError("a consumer died during the drain")
            lat, ticks, waited = [], 0, 0.0
            for _ in range(cfg.samples):
                sample, t, w = pickup(driver, marks, procs, cfg.idle)
                lat.append(sample * 1000)
                ticks += t
                waited += w
            out["pickup_ms"] = lat
            out["idle_cpu_pct"] = 100.0 * ticks / CLK_TCK / waited if waited else None
        finally:
            for p in procs:
                p.stop()
            driver.close()
    out["load_after"] = load()
    return out


# -- report -------------------------------------------------------------------------------

def key(name: str, consumers: int) -> str:
    return f"{name}/{consumers}"


def summarize(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in repeats if "error" not in r]
    out: dict[str, Any] = {k: summary([r[k] for r in ok if r.get(k) is not None])
                           for k in ("drain_per_s", "idle_cpu_pct")}
    pickup = pooled_pickup(ok)
    if pickup:
        out["pickup_ms"] = pickup
    out["load"] = [r["load_before"] for r in repeats]
    out["partial"] = [r["drained"] for r in ok if r.get("partial")]
    out["errors"] = [r["error"] for r in repeats if "error" in r]
    return out


def ratios(runs: dict[str, Any], names: list[str], counts: list[int]) -> dict[str, Any]:
    """litequeue ÷ each peer at each consumer count, paired repeat by repeat; and each
    system's drain at N consumers ÷ its drain at the smallest count (the same repeat)."""
    out: dict[str, Any] = {"vs": {}, "scaling": {}}
    for c in counts:
        base = runs.get(key("litequeue", c), {}).get("repeats")
        for name in names:
            mine = runs.get(key(name, c), {}).get("repeats")
            if not mine:
                continue
            if name != "litequeue" and base:
                out["vs"][key(name, c)] = {"drain": paired(base, mine, "drain_per_s"),
                                           "pickup_p50": paired(base, mine, "pickup_ms", invert=True)}
            first = runs.get(key(name, counts[0]), {}).get("repeats")
            if c != counts[0] and first:
                out["scaling"][key(name, c)] = paired(mine, first, "drain_per_s")
    return out


def render(report: dict[str, Any]) -> str:
    cfg = report["config"]
    lines = [f"PostgreSQL {report['machine'].get('postgres', '?')} on 127.0.0.1, {cfg['jobs']:,} no-op jobs, "
             f"{cfg['repeats']} repeat(s); drain and pickup after {cfg['idle']:g} s idle, median (min–max) "
             "over the repeats; pickup percentiles over every sample.", "",
             "| system | consumers (-w 8 each) | drain jobs/s | × 1 consumer | pickup p50 / p99 ms | idle CPU % "
             "| load (1 min) per repeat |", "|---|---|---|---|---|---|---|"]
    r = report.get("ratios", {})
    for name, info in report["systems"].items():
        if "skipped" in info:
            lines.append(f"| {info['label']} | skipped: {info['skipped']} | | | | | |")
            continue
        for c in cfg["consumers"]:
            run = report["runs"].get(key(name, c))
            if not run:
                continue
            s = run["summary"]
            p = s.get("pickup_ms")
            err = f" ({len(s['errors'])} failed: {s['errors'][0][:80]})" if s.get("errors") else ""
            scale = cell(r.get("scaling", {}).get(key(name, c)), "{:.2f}") if c != cfg["consumers"][0] else ""
            pick = f"{p['p50']:.1f} / {p['p99']:.1f}" if p else "–"
            loads = ", ".join(x.split(",")[0] for x in s["load"])
            part = f" (*{len(s['partial'])})" if s.get("partial") else ""
            lines.append(f"| {info['label']}{err} | {c} | {cell(s['drain_per_s'])}{part} | {scale} | {pick} | "
                         f"{cell(s['idle_cpu_pct'], '{:.2f}')} | {loads} |")
    if any(run["summary"].get("partial") for run in report["runs"].values()):
        lines += ["", f"(*n): in n repeats the drain had not finished after {cfg['drain_timeout']:g} s; the rate is "
                  "over the jobs that ran by then (the rest ran before the pickups)."]
    if r.get("vs"):
        lines += ["", "litequeue against each peer at the same consumer count, paired repeat by repeat, median "
                  "(min–max): drain as litequeue ÷ peer (above 1: litequeue faster); pickup p50 as peer ÷ "
                  "litequeue (above 1: litequeue picks up sooner).", "",
                  "| peer | consumers | drain × | pickup p50 × |", "|---|---|---|---|"]
        for k, v in r["vs"].items():
            name, c = k.rsplit("/", 1)
            lines.append(f"| {report['systems'][name]['label']} | {c} | {cell(v['drain'], '{:.2f}')} | "
                         f"{cell(v['pickup_p50'], '{:.2f}')} |")
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------

def git_head() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, 1 and 2 consumers, 1 repeat (smoke run)")
    ap.add_argument("--only", default="", help=f"comma-separated systems: {', '.join(PG_SYSTEMS)}")
    ap.add_argument("--repeats", type=int, default=None, help="repeats (default 3, 1 with --quick)")
    ap.add_argument("--jobs", type=int, default=None, help="jobs drained (default 10,000)")
    ap.add_argument("--samples", type=int, default=None, help="pickup samples per run (default 10)")
    ap.add_argument("--idle", type=float, default=None, help="idle seconds before each pickup (default 2)")
    ap.add_argument("--consumers", default=None, help="consumer counts (default 1,2,4)")
    ap.add_argument("--drain-timeout", type=float, default=120.0,
                    help="seconds a drain is timed at most (a slower one is measured over the jobs run by then)")
    ap.add_argument("--pg-url", default=os.environ.get("BENCH_PG_ADMIN_URL", DEFAULT_ADMIN_URL),
                    help="a database to connect to for CREATE/DROP DATABASE (trust auth)")
    ap.add_argument("--dir", default=None, help="where marks and logs go (default: the temp dir)")
    ap.add_argument("--render", metavar="JSON", help="print the table of an earlier run's JSON, run nothing")
    args = ap.parse_args(argv)
    if args.render:
        old = json.loads(Path(args.render).read_text())
        for run in old["runs"].values():  # a run stopped early has no summaries yet
            run["summary"] = summarize(run["repeats"])
        names = [n for n, info in old["systems"].items() if "skipped" not in info]
        old["ratios"] = ratios(old["runs"], names, old["config"]["consumers"])
        done = max((len(r["repeats"]) for r in old["runs"].values()), default=0)
        old["config"]["repeats"] = done
        print(f"# {old['uptime_before']}  ({old['command']}, git {old['git']})\n\n{render(old)}\n\n"
              f"{old.get('uptime_after', 'stopped early: ' + str(done) + ' repeat(s) done')}")
        return 0
    q = args.quick
    cfg = PgConfig(jobs=args.jobs or (300 if q else 10_000), samples=args.samples or (2 if q else 10),
                   idle=args.idle if args.idle is not None else (0.5 if q else 2.0),
                   repeats=args.repeats or (1 if q else 3), drain_timeout=args.drain_timeout,
                   consumers=[int(x) for x in (args.consumers or ("1,2" if q else "1,2,4")).split(",")],
                   admin_url=args.pg_url, dir=args.dir)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(PG_SYSTEMS)
    unknown = [n for n in names if n not in PG_SYSTEMS]
    if unknown:
        ap.error(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(PG_SYSTEMS)}")
    try:
        version = server_version(cfg.admin_url)
    except Exception as exc:  # noqa: BLE001 - any driver's connection error, said in one line
        print(f"error: cannot reach PostgreSQL at {urlsplit(cfg.admin_url).hostname}: {exc}".strip(),
              file=sys.stderr)
        return 2
    started = time.time()
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "uptime_before": uptime(), "git": git_head(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "postgres": version,
                    "platform": platform.platform()},
        "config": {k: v for k, v in vars(cfg).items() if k != "admin_url"}, "systems": {}, "runs": {},
    }
    print(f"# {report['uptime_before']}  (git {report['git']}, PostgreSQL {version})", flush=True)
    # SIGTERM ends the run through the ``finally`` blocks: consumers stopped, databases dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    path = results / f"postgres-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}{'-quick' if q else ''}.json"
    runnable = []
    for name in names:
        s = PG_SYSTEMS[name]
        why = s.missing()
        report["systems"][name] = {"label": s.label, "skipped": why} if why else {"label": s.label}
        if why:
            print(f"- {name}: skipped ({why})", flush=True)
        else:
            runnable.append(s)
    for rep in range(cfg.repeats):
        for c in cfg.consumers:
            for s in runnable:
                t0 = time.monotonic()
                try:
                    r = one_run(s, c, cfg)
                except Exception as exc:  # noqa: BLE001 - one system's failure must not end the run
                    r = {"load_before": load(), "error": f"{type(exc).__name__}: {exc}"}
                report["runs"].setdefault(key(s.name, c), {}).setdefault("repeats", []).append(r)
                print(f"- {s.name} x{c} repeat {rep + 1}/{cfg.repeats} ({time.monotonic() - t0:.0f} s): {brief(r)}",
                      flush=True)
                path.write_text(json.dumps(report, indent=2))  # so far (an interrupted run keeps its repeats)
    for run in report["runs"].values():
        run["summary"] = summarize(run["repeats"])
    report["ratios"] = ratios(report["runs"], [s.name for s in runnable], cfg.consumers)
    report["uptime_after"] = uptime()
    report["seconds"] = round(time.time() - started, 1)
    table = render(report)
    report["table"] = table
    print(f"\n{table}\n\n{report['uptime_after']}  ({report['seconds']} s, git {report['git']})")
    path.write_text(json.dumps(report, indent=2))
    print(f"written: {path.relative_to(HERE.parent)}")
    failed = sorted({k.split("/")[0] for k, r in report["runs"].items() if r["summary"]["errors"]})
    if failed:
        print(f"errors in: {', '.join(failed)} (see the JSON)", file=sys.stderr)
    return 1 if q and failed else 0


if __name__ == "__main__":
    sys.exit(main())
