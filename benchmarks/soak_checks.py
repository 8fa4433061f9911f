"""What ``soak.py`` checks at the end: the ledger against the producers' record and the tasks'
effects, the counters against the ledger, and the curves of RSS, open fds and database size."""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
# "Flat": the last third's median within 10 % + 8 MiB of the middle third's (RSS), within 4 fds,
# and the database's largest size of the last third within 25 % + 2 MiB of the middle third's.
RSS_SLACK, RSS_BYTES, FD_SLACK, DB_SLACK, DB_BYTES = 0.10, 8 * MIB, 4, 0.25, 2 * MIB
METRIC = re.compile(r'^litequeue_jobs_finished_total\{(?P<labels>[^}]*)\}\s+(?P<value>[0-9.e+]+)$', re.M)


@dataclass
class Run:
    root: Path
    pg_url: str | None
    seconds: float
    ledger: dict[str, dict[str, Any]] = field(default_factory=dict)  # every job seen in an export
    final: set[str] = field(default_factory=set)  # the ids the ledger still has at the end
    samples: list[tuple[float, dict[str, tuple[int, int]], int, float]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    exited: dict[str, int | None] = field(default_factory=dict)
    page_requests: int = 0
    page_errors: list[str] = field(default_factory=list)
    kills: dict[str, int] = field(default_factory=dict)
    orphans: int = 0
    prunes: int = 0
    first_prune: float | None = None
    drained: str = "not run"  # what was still queued or in the inbox at the end ("": nothing)
    ended: float = 0.0
    metrics: str = ""
    status: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    load_end: str = ""
    rows: list[tuple[str, str, bool]] = field(default_factory=list)

    def sample(self, t: float, procs: dict[str, tuple[int, int]], size: int, load1: float) -> None:
        self.samples.append((t, procs, size, load1))

    def table(self) -> str:
        out = ["", "| check | figure | ok |", "|---|---|---|"]
        out += [f"| {name} | {figure} | {'yes' if ok else 'NO'} |" for name, figure, ok in self.rows]
        return "\n".join(out)


def thirds(values: list[float]) -> tuple[list[float], list[float]]:
    k = len(values) // 3
    return values[k:2 * k], values[2 * k:]


def flat_report(run: Run) -> str:
    """The curves so far: per long-lived process, RSS (MiB) and open fds at up to 8 points."""
    if not run.samples:
        return "  (no samples yet)"
    step = max(1, len(run.samples) // 8)
    picks = run.samples[::step]
    names = list(run.samples[-1][1])
    lines = ["  curve at " + " ".join(f"{t:6.0f}s" for t, *_ in picks)]
    for name in names:
        rss = " ".join(f"{s[1].get(name, (-1, -1))[0] / MIB:7.1f}" for s in picks)
        fd = " ".join(f"{s[1].get(name, (-1, -1))[1]:7d}" for s in picks)
        lines.append(f"  {name:18} RSS MiB {rss}\n  {'':18} fds     {fd}")
    lines.append(f"  {'database':18} MiB     " + " ".join(f"{s[2] / MIB:7.1f}" for s in picks))
    lines.append(f"  {'load (1 min)':18}         " + " ".join(f"{s[3]:7.2f}" for s in picks))
    return "\n".join(lines)


def _read(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _first_arg(job: dict[str, Any]) -> Any:
    args = job.get("args")
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            return args
    return args[0] if isinstance(args, list) and args else None


def check_all(run: Run) -> list[str]:
    failures: list[str] = []

    def row(name: str, figure: Any, ok: bool, why: str = "") -> None:
        run.rows.append((name, str(figure), ok))
        if not ok:
            failures.append(f"{name}: {why or figure}")

    root = run.root
    effects: dict[str, list[list[str]]] = {}
    for parts in _read(root / "effects.log"):
        effects.setdefault(parts[1], []).append(parts)
    produced: dict[str, str] = {}  # job id -> producer
    batches: dict[str, list[str]] = {}
    errors = 0
    unique_bad = 0
    for kind in ("single", "bulk", "batch", "unique", "delayed"):
        for parts in _read(root / f"produced-{kind}.log"):
            if parts[0] == "error":
                errors += 1
                continue
            if kind == "batch":
                batches[parts[0]] = parts[1:]
                ids = parts[1:]
            elif kind == "unique":
                unique_bad += len(set(parts[1:])) != 1
                ids = parts[1:2]
            else:
                ids = parts
            for i in ids:
                produced[i] = kind
    files = [p[0] for p in _read(root / "produced-inbox.log")]
    ledger = run.ledger
    by_kind = Counter(produced.values())
    row("jobs produced", ", ".join(f"{k} {v:,}" for k, v in sorted(by_kind.items())) + f", inbox files {len(files):,}",
        True)
    row("enqueue errors", errors, errors == 0, f"{errors} enqueues raised (see produced-*.log)")
    row("drained at the end", run.drained or "yes", not run.drained, f"still there after 180 s: {run.drained}")

    lost = [i for i in produced if i not in ledger or ledger[i]["status"] != "succeeded" or i not in effects]
    row("lost (produced, not succeeded or never ran)", len(lost), not lost, f"{len(lost)} jobs, e.g. {lost[:3]}")
    twice, duplicates, phantom = [], 0, []
    for job_id, runs in effects.items():
        job = ledger.get(job_id)
        if job is None:
            phantom.append(job_id)
            continue
        if len(runs) > max(1, int(job.get("attempts") or 1)):
            twice.append(job_id)
        duplicates += len(runs) - 1
    row("finished twice (more runs than attempts)", len(twice), not twice, f"{len(twice)} jobs, e.g. {twice[:3]}")
    row("re-runs after an interrupted attempt", duplicates, True)
    row("effects of jobs the ledger never had", len(phantom), not phantom, f"e.g. {phantom[:3]}")
    states = Counter(j["status"] for j in ledger.values())
    row("ledger: jobs by status", ", ".join(f"{k} {v:,}" for k, v in sorted(states.items())),
        set(states) <= {"succeeded"}, "a job ended otherwise than succeeded")
    row("unique keys with more than one job", unique_bad, unique_bad == 0)

    callbacks = Counter(_first_arg(j) for j in ledger.values() if j["task"].endswith("fanin"))
    bad = [b for b in batches if callbacks.get(b, 0) != 1 or not any(
        effects.get(j) for j in ledger if ledger[j]["task"].endswith("fanin") and _first_arg(ledger[j]) == b)]
    row("batches whose callback did not fire exactly once", f"{len(bad)} of {len(batches)}", not bad,
        f"{len(bad)} batches, e.g. {bad[:3]}")
    ticks = [j for j in ledger.values() if j["task"].endswith("tick")]
    slots = int(run.ended // 60) + 2
    fewest = 1 if run.ended >= 65 else 0  # a minute boundary was crossed
    row("periodic runs (one a minute)", f"{len(ticks)} in {run.ended / 60:.1f} min", fewest <= len(ticks) <= slots,
        f"{len(ticks)} runs in {run.ended / 60:.1f} min")

    in_runs: dict[str, set[str]] = {}
    for job_id, runs in effects.items():
        for parts in runs:
            if parts[0] == "in":
                in_runs.setdefault(parts[2], set()).add(job_id)
    done = {p.name for p in (root / "inbox" / "done").glob("*")}
    bad_files = [f for f in files if len(in_runs.get(f, ())) != 1 or f not in done]
    row("inbox files not done exactly once", f"{len(bad_files)} of {len(files)}", not bad_files,
        f"e.g. {bad_files[:3]}")

    # Counters against the ledger.
    finished = Counter()
    for m in METRIC.finditer(run.metrics):
        outcome = re.search(r'outcome="([^"]*)"', m["labels"])
        finished[outcome.group(1) if outcome else "?"] += int(float(m["value"]))
    ok = all(finished.get(s, 0) == states.get(s, 0) for s in ("succeeded", "failed", "cancelled", "expired"))
    row("/metrics finished totals = ledger", f"{finished.get('succeeded', 0):,} = {states.get('succeeded', 0):,}", ok,
        f"/metrics {dict(finished)} vs ledger {dict(states)}")
    still = Counter(ledger[i]["status"] for i in run.final)
    total = run.stats.get("total", {})
    ok = all(total.get(s, 0) == still.get(s, 0) for s in ("succeeded", "failed", "cancelled", "expired"))
    row("stats --json totals = ledger kept", f"{total.get('succeeded', 0):,} = {still.get('succeeded', 0):,}", ok,
        f"stats {total} vs ledger {dict(still)}")
    counted = Counter()
    for q in run.status.get("queues", {}).values():
        for k, v in q.items():
            if k in ("waiting", "scheduled", "queued", "running", "retrying", "failed") and v:
                counted[k] += v
    live = Counter({k: v for k, v in still.items() if k in counted or k in
                    ("waiting", "scheduled", "queued", "running", "retrying", "failed")})
    row("status --json counts = ledger", dict(counted) or "all 0", counted == live,
        f"status {dict(counted)} vs ledger {dict(live)}")

    # Processes.
    row("consumer kills (SIGKILL)", ", ".join(f"{k} {v}" for k, v in run.kills.items()), True)
    row("worker processes left alive by a killed consumer", run.orphans, run.orphans == 0)
    row("long-lived processes that exited", len(run.exited), not run.exited, str(run.exited))
    row("status page requests / errors", f"{run.page_requests:,} / {len(run.page_errors)}", not run.page_errors,
        f"{len(run.page_errors)} errors, e.g. {run.page_errors[:3]}")
    names = list(run.samples[0][1]) if run.samples else []
    for name in names:
        rss = [s[1][name][0] for s in run.samples if s[1][name][0] > 0]
        fd = [s[1][name][1] for s in run.samples if s[1][name][1] >= 0]
        mid, last = thirds(rss)
        if not mid or not last:
            row(f"{name}: RSS, fds flat", "too few samples", False)
            continue
        m_rss, l_rss = statistics.median(mid), statistics.median(last)
        fmid, flast = thirds(fd)
        ok = l_rss <= m_rss * (1 + RSS_SLACK) + RSS_BYTES and max(flast) <= max(fmid) + FD_SLACK
        row(f"{name}: RSS MiB, fds (middle -> last third)",
            f"{m_rss / MIB:.1f} -> {l_rss / MIB:.1f}, {max(fmid)} -> {max(flast)}", ok, "grows")
    sizes = [s[2] for s in run.samples if run.first_prune is not None and s[0] >= run.first_prune]
    mid, last = thirds(sizes)
    ok = bool(mid and last) and max(last) <= max(mid) * (1 + DB_SLACK) + DB_BYTES
    row("database MiB after the first prune (middle -> last third)",
        f"{max(mid) / MIB:.1f} -> {max(last) / MIB:.1f}, {run.prunes} prunes" if mid and last else "too few samples",
        ok, "grows without bound, or too few samples after the first prune")
    row("load average at the end", run.load_end, True)
    return failures
