"""The ``litequeue batches list|show`` commands: the progress of batches of jobs (see
litequeue.engine.batches)."""

from __future__ import annotations

from typing import Any

import click

from litequeue.base.errors import LiteQueueError
from litequeue.cli.helpers import echo_json, json_option, store
from litequeue.cli.root import main
from litequeue.ledger import queries


@main.group()
def batches() -> None:
    """Batches of jobs: progress, counts, callbacks."""


def _eta(b: dict[str, Any]) -> str:
    return "–" if b["eta_seconds"] is None else f"{b['eta_seconds']:g}s"


@batches.command("list")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, help="At most this many.")
@json_option
@click.pass_context
def batches_list(ctx: click.Context, limit: int, as_json: bool) -> None:
    """Batches, newest first."""
    rows = queries.list_batches(store(ctx).database, limit=limit)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no batches yet")
        return
    click.echo(f"{'ID':<38}{'NAME':<24}{'STATE':<12}{'DONE':>11}{'FAILED':>8}{'RUNNING':>9}{'QUEUED':>8}"
               f"{'%':>7}  ETA")
    for b in rows:
        done = f"{b['succeeded'] + b['failed']}/{b['total']}"
        click.echo(f"{b['id']:<38}{b['name'][:23]:<24}{b['state']:<12}{done:>11}{b['failed']:>8}"
                   f"{b['running']:>9}{b['queued']:>8}{b['percent']:>7}  {_eta(b)}")


@batches.command("show")
@click.argument("batch_id")
@json_option
@click.pass_context
def batches_show(ctx: click.Context, batch_id: str, as_json: bool) -> None:
    """One batch: counts, percent, ETA, callbacks and child batches."""
    b = queries.get_batch(store(ctx).database, batch_id)
    if b is None:
        raise LiteQueueError(f"no batch {batch_id!r}; see `litequeue batches list`")
    if as_json:
        echo_json(b)
        return
    click.echo(f"{'batch:':<14}{b['id']}  {b['name']}")
    click.echo(f"{'state:':<14}{b['state']}{'' if b['sealed'] else ' (its block has not ended)'}")
    click.echo(f"{'progress:':<14}{b['succeeded']} of {b['total']} succeeded, {b['failed']} failed, "
               f"{b['running']} running, {b['queued']} queued ({b['percent']}%, ETA {_eta(b)})")
    for key in ("created", "started", "finished", "completed", "parent_id"):
        if b.get(key):
            click.echo(f"{key + ':':<14}{b[key]}")
    for key in ("on_complete", "on_failure"):
        cb = b[key]
        if cb:
            click.echo(f"{key + ':':<14}{cb['id']} {cb['status'] or 'not enqueued'}")
    if b["children"]:
        click.echo(f"{'children:':<14}{', '.join(b['children'])}")
