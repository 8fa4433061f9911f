"""Side-by-side benchmark: litequeue against bare Huey and the Redis-based queues.

    python benchmarks/run.py [--quick] [--only NAME,...] [--repeats N]
    python benchmarks/run.py --postgres [...]   (benchmarks/postgres.py: the PostgreSQL queues)

For each system, in one process tree on this machine: single-enqueue rate (one producer),
bulk enqueue (litequeue's ``task.map``), drain rate of N queued jobs (``--job noop|io|cpu``)
by a consumer with 8 workers (and litequeue with ``-k process -w 4``), pickup latency of a
job enqueued to a consumer idle for 2 s (and 60 s in the full run), the idle consumer's CPU,
and the start-up time of litequeue's read commands. Prints a markdown table (median and min–max
over the repeats, litequeue's ratio to each peer, the raw-SQLite ceiling) and writes the
same as JSON under ``benchmarks/results/``. The Redis peers run against a ``redis-server``
the benchmark starts on a free port and kills afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ceiling
from harness import (
    CLK_TCK,
    HERE,
    TASKS_DIR,
    Consumer,
    Driver,
    Marks,
    RedisServer,
    load,
    summary,
    tree_ticks,
    tree_wakeups,
    uptime,
    workdir,
)
from pairing import brief, cell, paired, pooled_pickup
from systems import QUICK, SYSTEMS, System


@dataclass
class Config:
    jobs: int
    bulk: int
    samples: int
    idle: float
    long_idle: float
    long_rounds: int
    repeats: int
    dir: str | None
    job: str = "noop"


def git_head() -> str:
    """The commit measured (with ``+dirty`` when litequeue/ has uncommitted changes)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "litequeue"], cwd=HERE.parent,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def environment(system: System, tmp: Path, redis_url: str | None, job: str = "noop") -> dict[str, str]:
    env = dict(os.environ)
    env.update(system.env)
    env.update(BENCH_JOB=job, BENCH_IO=str(tmp / "io.txt"),
               BENCH_MARKS=str(tmp / "marks"), LITEQUEUE_DB=str(tmp / "litequeue.db"),
               BENCH_HUEY_DB=str(tmp / "huey.db"), BENCH_REDIS_URL=redis_url or "",
               PYTHONPATH=os.pathsep.join(filter(None, [str(TASKS_DIR), env.get("PYTHONPATH")])))
    return env


def pickup(driver: Driver, marks: Marks, consumer: Consumer, idle: float) -> tuple[float, int, float, int]:
    """One sample: wait ``idle`` s (counting the consumer's CPU ticks and its threads'
    wake-ups), enqueue one job, return (seconds from just before the enqueue to the task's
    first line, ticks, idle s, wake-ups)."""
    c0, k0, w0 = tree_ticks(consumer.pid), tree_wakeups(consumer.pid), time.monotonic()
    time.sleep(idle)
    ticks, woke, waited = tree_ticks(consumer.pid) - c0, tree_wakeups(consumer.pid) - k0, time.monotonic() - w0
    before = marks.count()
    t0 = driver.ask("one")
    if not marks.wait_count(before + 1, timeout=max(30.0, idle), alive=consumer):
        raise RuntimeError("the pickup job did not run within 30 s")
    return marks.times(before)[0] - t0, ticks, waited, woke


def one_repeat(system: System, cfg: Config, redis: RedisServer | None) -> dict[str, Any]:
    out: dict[str, Any] = {"load_before": load()}
    url = redis.url if redis else None
    if redis:
        redis.flush()
    with workdir(cfg.dir, system.name) as tmp:
        env = environment(system, tmp, url, cfg.job)
        marks = Marks(tmp / "marks")
        driver = Driver(system.module, env, tmp)
        try:
            driver.ask("single 1")  # connections open and tables exist before any timing
            out["enqueue_per_s"] = cfg.jobs / driver.ask(f"single {cfg.jobs}")
            total = cfg.jobs + 1
            consumer = Consumer(system.argv(url), env, tmp)
            try:
                if not marks.wait_count(total, timeout=60 + cfg.jobs / 50, poll=0.01, alive=consumer):
                    raise RuntimeError(f"drain stopped at {marks.count()} of {total} jobs "
                                       f"(see {tmp / 'consumer.log'})")
                times = marks.times()
                # From the first job's start to the last job's: interpreter and import time
                # are left out alike for every system.
                out["drain_per_s"] = (total - 1) / (max(times) - min(times))
                out["drain_wall_s"] = max(times) - consumer.started
                lat, ticks, waited, woke = [], 0, 0.0, 0
                for _ in range(cfg.samples):
                    sample, t, w, k = pickup(driver, marks, consumer, cfg.idle)
                    lat.append(sample * 1000)
                    ticks += t
                    waited += w
                    woke += k
                out["pickup_ms"] = lat
                out["idle_cpu_pct"] = 100.0 * ticks / CLK_TCK / waited if waited else None
                out["idle_wakeups_per_s"] = woke / waited if waited else None
            finally:
                consumer.stop()
        finally:
            driver.close()
        if system.bulk:
            env["LITEQUEUE_DB"] = str(tmp / "bulk.db")
            bulk = Driver(system.module, env, tmp)
            try:
                bulk.ask("single 1")
                out["bulk_per_s"] = cfg.bulk / bulk.ask(f"bulk {cfg.bulk}")
            finally:
                bulk.close()
    out["load_after"] = load()
    return out


def long_idle(systems: list[System], cfg: Config, redis: RedisServer | None) -> dict[str, dict[str, Any]]:
    """Pickup after ``cfg.long_idle`` s of idleness: every consumer idles at the same time,
    then each gets one job in turn (so each waited at least that long)."""
    results: dict[str, dict[str, Any]] = {}
    running: list[tuple[System, Driver, Consumer, Marks, Any]] = []
    try:
        for i, system in enumerate(systems):
            ctx = workdir(cfg.dir, system.name + "-idle")
            tmp = ctx.__enter__()
            url = f"{redis.url[:-2]}/{i + 1}" if redis else None
            env = environment(system, tmp, url, cfg.job)
            marks = Marks(tmp / "marks")
            driver = Driver(system.module, env, tmp)
            consumer = Consumer(system.argv(url), env, tmp)
            running.append((system, driver, consumer, marks, ctx))
            driver.ask("one")
            if not marks.wait_count(1, timeout=60, alive=consumer):
                raise RuntimeError(f"{system.name}: the warm-up job did not run")
            results[system.name] = {"pickup_ms": [], "ticks": 0, "waited": 0.0}
        for _ in range(cfg.long_rounds):
            starts = {s.name: (tree_ticks(c.pid), time.monotonic()) for s, _, c, _, _ in running}
            time.sleep(cfg.long_idle)
            for system, driver, consumer, marks, _ in running:
                c0, w0 = starts[system.name]
                r = results[system.name]
                r["ticks"] += tree_ticks(consumer.pid) - c0
                r["waited"] += time.monotonic() - w0
                before = marks.count()
                t0 = driver.ask("one")
                if marks.wait_count(before + 1, timeout=30, alive=consumer):
                    r["pickup_ms"].append((marks.times(before)[0] - t0) * 1000)
    finally:
        for _, driver, consumer, _, ctx in running:
            consumer.stop()
            driver.close()
            ctx.__exit__(None, None, None)
    for r in results.values():
        r["idle_cpu_pct"] = 100.0 * r.pop("ticks") / CLK_TCK / r.pop("waited")
    return results


def startup(cfg: Config, runs: int = 11) -> dict[str, float]:
    """Wall time (median of ``runs``, ms) of litequeue's read commands on a small database,
    of ``litequeue --help`` and of ``huey_consumer --help``, each a fresh interpreter."""
    system = SYSTEMS["litequeue"]
    with workdir(cfg.dir, "startup") as tmp:
        env = environment(system, tmp, None)
        driver = Driver(system.module, env, tmp)
        try:
            for _ in range(20):
                driver.ask("one")
        finally:
            driver.close()
        lq = str(Path(system.consumer[0]))
        job = json.loads(subprocess.run([lq, "jobs", "list", "--json"], env=env, cwd=tmp, capture_output=True,
                                        text=True, check=True).stdout)[0]["id"]
        # As installed (pip compiles every module): bytecode written, and each command run once
        # before the timed runs, so no run pays for compiling (PYTHONDONTWRITEBYTECODE would
        # have every run of an editable checkout compile all of litequeue, ~65 ms here).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        commands = {"litequeue status": [lq, "status"], "litequeue jobs list": [lq, "jobs", "list"],
                    "litequeue jobs show": [lq, "jobs", "show", job], "litequeue health": [lq, "health"],
                    "litequeue --help": [lq, "--help"],
                    "huey_consumer --help": [str(Path(lq).parent / "huey_consumer"), "--help"]}
        out: dict[str, float] = {}
        for name, argv in commands.items():
            subprocess.run(argv, env=env, cwd=tmp, capture_output=True)
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                subprocess.run(argv, env=env, cwd=tmp, capture_output=True)
                times.append((time.perf_counter() - t0) * 1000)
            out[name] = sorted(times)[len(times) // 2]
    return out


# -- report -------------------------------------------------------------------------------

def summarize(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in repeats if "error" not in r]
    out: dict[str, Any] = {}
    for key in ("enqueue_per_s", "bulk_per_s", "drain_per_s", "idle_cpu_pct", "idle_wakeups_per_s"):
        out[key] = summary([r[key] for r in ok if r.get(key) is not None])
    pickup = pooled_pickup(ok)
    if pickup:
        out["pickup_ms"] = pickup
    out["load"] = [r["load_before"] for r in repeats]
    return out


def render(report: dict[str, Any]) -> str:
    long_on = any("long_idle" in r for r in report["systems"].values())
    head = ["system", "enqueue jobs/s", "bulk jobs/s", "drain jobs/s (-w 8)", "pickup p50/p95/p99 ms (2 s idle)"]
    if long_on:
        head.append(f"pickup p50/max ms ({report['config']['long_idle']:.0f} s idle)")
    head += ["idle CPU %", "idle wake-ups/s", "load (1 min) per repeat"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in report["systems"].items():
        if "skipped" in r:
            lines.append(f"| {name} | skipped: {r['skipped']} |" + " |" * (len(head) - 2))
            continue
        s = r["summary"]
        p = s.get("pickup_ms")
        row = [r["label"], cell(s["enqueue_per_s"]), cell(s["bulk_per_s"]), cell(s["drain_per_s"]),
               f"{p['p50']:.1f} / {p['p95']:.1f} / {p['p99']:.1f}" if p else "–"]
        if long_on:
            li = r.get("long_idle", {}).get("pickup_ms") or []
            row.append(f"{sorted(li)[len(li) // 2]:.1f} / {max(li):.1f}" if li else "–")
        row += [cell(s["idle_cpu_pct"], "{:.2f}"), cell(s.get("idle_wakeups_per_s"), "{:.1f}"),
                ", ".join(x.split(",")[0] for x in s["load"])]
        lines.append("| " + " | ".join(row) + " |")
    ratios = report.get("ratios") or {}
    if ratios:
        lines += ["", "litequeue (full) against each peer, paired repeat by repeat, median (min–max): rates "
                  "as litequeue ÷ peer (above 1: litequeue faster); pickup p50 as peer ÷ litequeue (above 1: "
                  "litequeue picks up sooner); idle wake-ups as peer ÷ litequeue (above 1: litequeue wakes less).", "",
                  "| peer | enqueue × | drain × | pickup p50 × | idle wake-ups × |", "|---|---|---|---|---|"]
        for peer, r in ratios.items():
            lines.append(f"| {peer} | " + " | ".join(cell(r.get(k), "{:.2f}") for k in
                                                       ("enqueue", "drain", "pickup_p50", "idle_wakeups")) + " |")
    st = report.get("startup")
    if st:
        lines += ["", f"Start-up, wall time in ms (median of 11 fresh processes, small database, load "
                  f"{st.get('load', '?')}): " + ", ".join(f"`{k}` {v:.0f}" for k, v in st.items() if k != "load")
                  + "."]
        huey = st.get("huey_consumer --help")
        reads = {k: v for k, v in st.items() if k.startswith("litequeue ") and k != "litequeue --help"}
        if huey and reads:
            worst = max(reads.values())
            lines += ["", "Read commands against `huey_consumer --help` (target ≤ 0.6×, and ≤ 150 ms each): "
                      + ", ".join(f"`{k}` {v / huey:.2f}×" for k, v in reads.items())
                      + f"; slowest {worst:.0f} ms: {'met' if worst <= 150 and worst / huey <= 0.6 else 'missed'}."]
    c = report.get("ceiling")
    if c:
        lines += ["", f"Raw-SQLite ceiling on this disk (WAL, synchronous=FULL, Python sqlite3; median "
                  f"(min–max) of one measurement per repeat): {cell(c['single_commits_per_s'])} single-row "
                  f"commits/s, {cell(c['claim_ack_pairs_per_s'])} claim+ack pairs/s (two commits each), "
                  f"{cell(c['batched_rows_per_s'])} rows/s batched in one transaction."]
    return "\n".join(lines)


def ratios(systems: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """litequeue (full) against each peer, paired repeat by repeat (the two ran minutes apart,
    so a slow spell of the shared disk hits both): median (min–max) of the per-repeat ratios.
    Rates: litequeue ÷ peer; pickup p50: peer ÷ litequeue (above 1: litequeue is better)."""
    base = systems.get("litequeue", {}).get("repeats")
    if not base:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for name, r in systems.items():
        if name == "litequeue" or not r.get("repeats"):
            continue
        peer = r["repeats"]
        out[name] = {"enqueue": paired(base, peer, "enqueue_per_s"), "drain": paired(base, peer, "drain_per_s"),
                     "pickup_p50": paired(base, peer, "pickup_ms", invert=True),
                     "idle_wakeups": paired(base, peer, "idle_wakeups_per_s", invert=True)}
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--postgres" in argv:  # the PostgreSQL run lives in its own module
        import postgres

        return postgres.main([a for a in argv if a != "--postgres"])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="litequeue + bare Huey + ceiling, small sizes (< 2 min)")
    ap.add_argument("--only", default="", help=f"comma-separated systems: {', '.join(SYSTEMS)}")
    ap.add_argument("--repeats", type=int, default=None, help="repeats per system (default 3, 1 with --quick)")
    ap.add_argument("--jobs", type=int, default=None, help="jobs enqueued then drained (default 10,000)")
    ap.add_argument("--bulk", type=int, default=None, help="jobs in the bulk enqueue (default 100,000)")
    ap.add_argument("--samples", type=int, default=None, help="pickup samples per repeat (default 15)")
    ap.add_argument("--idle", type=float, default=2.0, help="idle seconds before each pickup sample")
    ap.add_argument("--long-idle", type=float, default=None, help="the long idle (default 60 s; 0: skip)")
    ap.add_argument("--long-rounds", type=int, default=3, help="samples after the long idle")
    ap.add_argument("--job", choices=("noop", "io", "cpu"), default="noop",
                    help="what each job does: nothing, open-append-close a file, or ~20 ms of pure Python")
    ap.add_argument("--dir", default=None, help="where the databases go (default: the temp dir)")
    ap.add_argument("--no-ceiling", action="store_true")
    ap.add_argument("--no-startup", action="store_true", help="skip the start-up times")
    ap.add_argument("--render", metavar="JSON", help="print the table of an earlier run's JSON, run nothing")
    args = ap.parse_args(argv)
    if args.render:
        old = json.loads(Path(args.render).read_text())
        old["ratios"] = ratios(old["systems"])
        print(f"# {old['uptime_before']}  (git {old.get('git', 'unknown')})\n\n{render(old)}\n\n"
              f"{old['uptime_after']}")
        return 0
    q = args.quick
    cfg = Config(jobs=args.jobs or (2000 if q else 10_000), bulk=args.bulk or (20_000 if q else 100_000),
                 samples=args.samples or (6 if q else 15), idle=args.idle,
                 long_idle=(0.0 if q else 60.0) if args.long_idle is None else args.long_idle,
                 long_rounds=args.long_rounds, repeats=args.repeats or (1 if q else 3), dir=args.dir,
                 job=args.job)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(QUICK if q else SYSTEMS)
    unknown = [n for n in names if n not in SYSTEMS]
    if unknown:
        ap.error(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    started = time.time()
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "uptime_before": uptime(),
        "git": git_head(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "sqlite": sqlite3.sqlite_version, "platform": platform.platform()},
        "config": vars(cfg), "systems": {},
    }
    print(f"# {report['uptime_before']}  (git {report['git']})", flush=True)
    systems = [SYSTEMS[n] for n in names]
    runnable = []
    for s in systems:
        why = s.missing()
        report["systems"][s.name] = {"label": s.label, "skipped": why} if why else {"label": s.label}
        if why:
            print(f"- {s.name}: skipped ({why})", flush=True)
        else:
            runnable.append(s)
    redis = RedisServer() if any(s.redis for s in runnable) else None
    try:
        ceilings: list[dict[str, float]] = []
        for rep in range(cfg.repeats):
            if not args.no_ceiling:  # once per repeat: the disk is shared and its speed varies
                with workdir(cfg.dir, "ceiling") as tmp:
                    ceilings.append(ceiling.measure(tmp, commits=1000 if q else 3000, pairs=500 if q else 1500))
                print(f"- ceiling {rep + 1}/{cfg.repeats} (load {load()}): "
                      f"{ {k: round(v) for k, v in ceilings[-1].items()} }", flush=True)
            for s in runnable:
                t0 = time.monotonic()
                try:
                    r = one_repeat(s, cfg, redis)
                except Exception as exc:  # noqa: BLE001 - one system's failure must not end the run
                    r = {"load_before": load(), "error": f"{type(exc).__name__}: {exc}"}
                report["systems"][s.name].setdefault("repeats", []).append(r)
                print(f"- {s.name} repeat {rep + 1}/{cfg.repeats} ({time.monotonic() - t0:.0f} s): {brief(r)}",
                      flush=True)
        if not args.no_startup and SYSTEMS["litequeue"] in runnable:
            report["startup"] = startup(cfg) | {"load": load()}
            print(f"- start-up: {report['startup']}", flush=True)
        if cfg.long_idle > 0 and runnable:
            print(f"- pickup after {cfg.long_idle:.0f} s idle, {cfg.long_rounds} rounds...", flush=True)
            for name, r in long_idle(runnable, cfg, redis).items():
                report["systems"][name]["long_idle"] = r
    finally:
        if redis:
            redis.stop()
    for r in report["systems"].values():
        if "repeats" in r:
            r["summary"] = summarize(r["repeats"])
    if ceilings:
        report["ceiling"] = {k: summary([c[k] for c in ceilings]) for k in ceilings[0]}
        report["ceiling_repeats"] = ceilings
    report["ratios"] = ratios(report["systems"])
    report["uptime_after"] = uptime()
    report["seconds"] = round(time.time() - started, 1)
    table = render(report)
    report["table"] = table
    print(f"\n{table}\n\n{report['uptime_after']}  ({report['seconds']} s, git {report['git']})")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    path = results / f"run-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}{'-quick' if q else ''}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"written: {path.relative_to(HERE.parent)}")
    failed = [n for n, r in report["systems"].items() if any("error" in x for x in r.get("repeats", []))]
    if failed:
        print(f"errors in: {', '.join(failed)} (see the JSON)", file=sys.stderr)
    return 1 if q and failed else 0


if __name__ == "__main__":
    sys.exit(main())
