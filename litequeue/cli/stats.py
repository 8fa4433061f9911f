"""The ``litequeue stats`` command: runs, outcomes, retries, wait and run time, CPU time and peak memory
per task, queue or hour."""

from __future__ import annotations

import time
from typing import Any

import click

from litequeue.base.durations import format_duration
from litequeue.base.usage import size
from litequeue.cli.helpers import echo_json, json_option, ledger
from litequeue.cli.root import ConfigError, main
from litequeue.ledger import stats as ledger_stats
from litequeue.ledger.stats import parse_since


def duration(value: float | None) -> str:
    """A short duration for a table cell: ``850ms``, ``12.5s``, ``4m10s``, ``3h5m``."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    if value < 60:
        return f"{value:.2f}s" if value < 10 else f"{value:.1f}s"
    return format_duration(value)


def _spread(figures: dict[str, Any]) -> str:
    if not figures["count"]:
        return "-"
    return " / ".join(duration(figures[k]) for k in ("p50", "p95", "max"))


def _used(row: dict[str, Any]) -> str:
    cpu = row["cpu_s"]
    text = f"{duration(cpu['p50'])} / {duration(cpu['p95'])}" if cpu["count"] else "-"
    return f"{text:<18}{size(row['peak_rss_bytes'])}"


def _rate(row: dict[str, Any]) -> str:
    return "-" if row["success_rate"] is None else f"{100 * row['success_rate']:.1f}%"


@main.command()
@click.option("--since", "since_text", default="24h", metavar="DURATION",
              help="The window: runs and jobs that ended in the last DURATION (30m, 24h, 7d).")
@click.option("--by", type=click.Choice(ledger_stats.GROUPINGS), default="task",
              help="One row per task, per queue, or per hour (UTC) for trends.")
@click.option("--task", default=None, help="Only this task (its name as `jobs list` shows it).")
@click.option("-Q", "--queue", default=None, help="Only this queue.")
@json_option
@click.pass_context
def stats(ctx: click.Context, since_text: str, by: str, task: str | None, queue: str | None,
          as_json: bool) -> None:
    """Task statistics from the ledger: runs, jobs succeeded and failed, success rate, retries,
    wait and run time (p50 / p95 / max), CPU time (p50 / p95) and the largest peak resident memory
    of a run, per task, queue or hour."""
    try:
        window = parse_since(since_text)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    now = time.time()
    # A read command: the ledger alone, no Huey, no storage (start-up time).
    data = ledger_stats.task_stats(ledger(ctx), since=now - window, until=now, by=by, task=task, queue=queue)
    data["window"] = since_text
    if as_json:
        echo_json(data)
        return
    _print_table(data, by)


def _print_table(data: dict[str, Any], by: str) -> None:
    groups = data["groups"]
    if by == "hour":
        labels = [g["hour"][:10] + " " + g["hour"][11:16] for g in groups]
    else:
        labels = [str(g[by]) for g in groups]
    width = max([len(x) for x in labels] + [len(by), 5]) + 2
    click.echo(f"last {data['window']} ({data['since'][:16].replace('T', ' ')} to "
               f"{data['until'][:16].replace('T', ' ')} UTC)"
               + (f", task {data['filters']['task']}" if data["filters"]["task"] else "")
               + (f", queue {data['filters']['queue']}" if data["filters"]["queue"] else ""))
    if not data["total"]["runs"] and not data["total"]["succeeded"] + data["total"]["failed"]:
        click.echo("nothing ran or finished in this window")
        if by != "hour":
            return
    header = (f"{by.upper():<{width}}{'RUNS':>7}{'OK':>7}{'FAILED':>8}{'SUCCESS':>9}{'RETRIES':>9}"
              f"   {'WAIT p50 / p95 / max':<26}{'RUN p50 / p95 / max':<26}{'CPU p50 / p95':<18}PEAK RSS")
    click.echo(header)
    for label, row in [*zip(labels, groups, strict=True), ("TOTAL", data["total"])]:
        click.echo(f"{label:<{width}}{row['runs']:>7}{row['succeeded']:>7}{row['failed']:>8}{_rate(row):>9}"
                   f"{row['retries']:>9}   {_spread(row['wait_s']):<26}{_spread(row['run_s']):<26}{_used(row)}")
    if data["percentiles"]["sampled"]:
        click.echo(f"(percentiles of groups with more than {ledger_stats.SAMPLE_LIMIT} runs are from a "
                   "random sample of that many; counts and maxima are exact)")
