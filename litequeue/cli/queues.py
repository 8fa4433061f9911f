"""The queue control and retention commands: ``litequeue pause``, ``resume``, ``purge`` and
``prune``, and the duration type their flags take."""

from __future__ import annotations

import time
from typing import Any

import click

from litequeue.base import defaults
from litequeue.base.durations import format_duration, parse_duration
from litequeue.base.errors import ConfigurationError
from litequeue.base.states import FINAL_VALUES
from litequeue.cli.helpers import echo_json, json_option, store
from litequeue.cli.progress import progress
from litequeue.cli.root import main
from litequeue.jobs import actions, retention
from litequeue.ledger import queries


class Duration(click.ParamType):
    """``30s``, ``10m``, ``2h``, ``1d``, ``2w`` or sums like ``1h30m``, as seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = Duration()


def _names(queues: tuple[str, ...]) -> list[str]:
    names = [q.strip() for arg in queues for q in arg.split(",") if q.strip()]
    if not names:
        raise click.BadParameter("give at least one queue name", param_hint="QUEUE")
    return list(dict.fromkeys(names))


@main.command()
@click.argument("queues", nargs=-1, required=True, metavar="QUEUE...")
@click.option("--for", "for_", type=DURATION, default=None, metavar="DURATION",
              help="Resume by itself after this long (30s, 10m, 2h, 1d).")
@click.pass_context
def pause(ctx: click.Context, queues: tuple[str, ...], for_: float | None) -> None:
    """Stop consumers taking new jobs from QUEUE...; running jobs finish.

    Consumers notice within a second. Jobs can still be enqueued; they wait.
    """
    if for_ is not None and for_ <= 0:
        raise click.BadParameter("must be longer than 0s, e.g. 30m", param_hint="--for")
    names = _names(queues)
    actions.pause_queues(store(ctx, create=True), names, seconds=for_)
    until = "until `litequeue resume`" if for_ is None else (
        f"for {format_duration(for_)} (until {queries.iso(time.time() + for_)})")
    for name in names:
        click.echo(f"paused {name} {until}")


@main.command()
@click.argument("queues", nargs=-1, required=True, metavar="QUEUE...")
@click.pass_context
def resume(ctx: click.Context, queues: tuple[str, ...]) -> None:
    """Let consumers take jobs from QUEUE... again (at once)."""
    names = _names(queues)
    s = store(ctx)
    summary = queries.queue_summary(s.database)
    actions.resume_queues(s, names)
    for name in names:
        was = summary.get(name, {}).get("paused")
        click.echo(f"resumed {name}" if was else f"{name} was not paused")


@main.command()
@click.argument("queues", nargs=-1, required=False, metavar="[QUEUE...]")
@click.option("--tag", default=None, help="Only the jobs with this tag (then QUEUE... is optional).")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Only count the jobs that would be dropped.")
@click.pass_context
def purge(ctx: click.Context, queues: tuple[str, ...], tag: str | None, yes: bool, dry_run: bool) -> None:
    """Drop the queued jobs of QUEUE... or of --tag (not running, scheduled or retrying ones).

    Dropped jobs end `cancelled` in the ledger, so they can still be found and retried.
    """
    if tag is not None:
        _purge_tag(ctx, tag, _names(queues) if queues else [], yes, dry_run)
        return
    names = _names(queues)
    s = store(ctx)
    counts = actions.purge_queues(s, names, dry_run=True)
    total = sum(counts.values())
    if dry_run or total == 0:
        for name in names:
            click.echo(f"{name}: {counts[name]} queued job(s) {'would be dropped' if dry_run else ''}".rstrip())
        return
    if not yes:
        listing = ", ".join(f"{n} ({counts[n]})" for n in names)
        click.confirm(f"Drop {total} queued job(s) from {listing}? They end cancelled", abort=True,
                      err=True)
    dropped = 0
    # One queue per transaction: a consumer waits for one queue's purge at most.
    with progress("purge", total) as report:
        for name in names:
            n = actions.purge_queues(s, [name])[name]
            dropped += n
            report(dropped, max(total, dropped))
            click.echo(f"{name}: dropped {n} queued job(s)")
    click.echo(f"dropped {dropped} job(s); they are cancelled in the ledger")


def _purge_tag(ctx: click.Context, tag: str, names: list[str], yes: bool, dry_run: bool) -> None:
    s = store(ctx)
    where = f" in {', '.join(names)}" if names else ""
    total = actions.purge_tag(s, tag, names, dry_run=True)
    if dry_run or total == 0:
        click.echo(f"tag {tag}{where}: {total} queued job(s) {'would be dropped' if dry_run else ''}".rstrip())
        return
    if not yes:
        click.confirm(f"Drop {total} queued job(s) tagged {tag}{where}? They end cancelled", abort=True, err=True)
    dropped = actions.purge_tag(s, tag, names)
    click.echo(f"tag {tag}{where}: dropped {dropped} queued job(s); they are cancelled in the ledger")


@main.command()
@click.option("--older-than", type=DURATION, default=None, metavar="DURATION",
              help="Prune jobs that finished longer ago than this (e.g. 7d). Default: the retention "
                   f"policy, {defaults.KEEP_SUCCEEDED_DAYS}d for succeeded and "
                   f"{defaults.KEEP_FAILED_DAYS}d for failed, cancelled and expired jobs.")
@click.option("--status", "statuses", default=",".join(FINAL_VALUES), metavar="S1,S2",
              help="Only jobs that ended in these statuses.")
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@click.option("--vacuum", is_flag=True, help="Then give the freed space back to the filesystem "
                                             "(rewrites the file; holds the write lock meanwhile).")
@click.option("--batch", type=click.IntRange(1, 100000), default=1000,
              help="Jobs deleted per transaction (smaller: consumers wait less).")
@json_option
@click.pass_context
def prune(ctx: click.Context, older_than: float | None, statuses: str, dry_run: bool, vacuum: bool,
          batch: int, as_json: bool) -> None:
    """Delete old finished jobs from the ledger, with their attempts and results, and old
    events; keeps the counters metrics use and never touches unfinished jobs."""
    try:
        wanted = retention.check_statuses(statuses.split(","))
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc), param_hint="--status") from None
    s = store(ctx)
    label = "would prune" if dry_run else "prune"
    with progress(label, None) as report:
        if older_than is None:
            result = retention.prune_policy(s, dry_run=dry_run, batch=batch, progress=report,
                                            statuses=wanted)
        else:
            result = retention.prune(s, older_than, wanted, dry_run=dry_run, batch=batch, progress=report)
    sizes = retention.vacuum(s) if vacuum and not dry_run else None
    if as_json:
        data = result.as_dict()
        data["cutoffs"] = {k: queries.iso(v) for k, v in result.cutoffs.items()}
        if sizes is not None:
            data["size_before"], data["size_after"] = sizes
        echo_json(data)
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} {result.jobs} job(s), {result.attempts} attempt(s), {result.results} result(s), "
               f"{result.events} event(s), {result.periodic_runs} periodic run key(s), "
               f"{result.consumers} stopped consumer(s)")
    for group, cutoff in result.cutoffs.items():
        click.echo(f"  {group}: finished before {queries.iso(cutoff)}")
    if sizes is not None:
        before, after = sizes
        if before is None or after is None:
            click.echo("vacuumed")
        else:
            click.echo(f"vacuumed: {_mb(before)} -> {_mb(after)}")


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
