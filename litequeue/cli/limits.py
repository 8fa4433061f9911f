"""The ``litequeue breakers`` commands, and what ``status`` shows of concurrency limits, breakers
and rate limits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from litequeue.base.durations import format_duration
from litequeue.base.errors import LiteQueueError
from litequeue.cli.helpers import echo_json, json_option, store
from litequeue.cli.root import main, status_extras, status_printers
from litequeue.jobs import actions
from litequeue.ledger import queries

if TYPE_CHECKING:
    import peewee as pw


@main.group("breakers", invoke_without_command=True)
@json_option
@click.pass_context
def breakers(ctx: click.Context, as_json: bool) -> None:
    """Show every task's circuit breaker: closed (jobs run), open (jobs held until a trial
    job may go through), half-open (one trial job decides)."""
    if ctx.invoked_subcommand is not None:
        return
    rows = queries.breakers(store(ctx).database)
    if as_json:
        echo_json({"breakers": rows})
        return
    if not rows:
        click.echo("no breakers (declare one with @app.task(breaker=Breaker(...)) and start a consumer)")
        return
    for b in rows:
        click.echo(_breaker_line(b))


def _breaker_line(b: dict[str, Any]) -> str:
    setting = (f"{b['failures']} failures in {format_duration(b['window_s'])}, "
               f"cool-down {format_duration(b['cooldown_s'])}")
    if b["state"] == "open":
        when = "now" if not b["trial_due_in_s"] else f"in {b['trial_due_in_s']:g}s ({b['trial_due']})"
        detail = f"since {b['opened_at']}; {b['held']} job(s) held; a trial job goes through {when}"
    elif b["state"] == "half-open":
        detail = f"trial job {b['trial_job']} running; {b['held']} job(s) held"
    else:
        detail = f"{b['recent_failures']} failure(s) in the window"
    return f"{b['task']:<24}{b['state']:<11}{detail}  [{setting}]"


@breakers.command("reset")
@click.argument("task")
@click.pass_context
def breakers_reset(ctx: click.Context, task: str) -> None:
    """Close the breaker of TASK by hand: its held jobs run at once."""
    found = actions.reset_breaker(store(ctx), task)
    if not found:
        known = ", ".join(b["task"] for b in queries.breakers(store(ctx).database)) or "none"
        raise LiteQueueError(f"no breaker for task {task!r}; breakers: {known}")
    for app, state in found:
        click.echo(f"{task}: closed (was {state})" + (f" [app {app}]" if len(found) > 1 else ""))


def limits_extra(db: pw.Database) -> dict[str, Any]:
    return {"limits": queries.concurrency_limits(db), "breakers": queries.breakers(db),
            "rate_limited": queries.rate_limited(db)}


def print_limits(data: dict[str, Any]) -> None:
    limits = [lim for lim in data.get("limits", []) if lim["concurrency"] is not None]
    if limits:
        click.echo("\nconcurrency limits (running / limit):")
        for lim in limits:
            click.echo(f"  {lim['scope']} {lim['name']:<22}{lim['running']}/{lim['concurrency']} running, "
                       f"{lim['queued']} queued")
    shown = [b for b in data.get("breakers", []) if b["state"] != "closed"] or data.get("breakers", [])
    if shown:
        click.echo("\nbreakers:")
        for b in shown:
            click.echo("  " + _breaker_line(b))
    for r in data.get("rate_limited", []):
        click.echo(f"\nrate limited: {r['jobs']} job(s) of {r['task']} ({r['queue']}) held back by Huey's "
                   f"rate_limit, next try {queries.iso(r['next_try'])}")


status_extras.append(limits_extra)
status_printers.append(print_limits)
