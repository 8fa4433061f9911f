"""The ``litequeue schedules ...`` commands: cron schedules kept in the database, changed while
consumers run."""

from __future__ import annotations

import os
import time
from typing import Any

import click

from litequeue.base.cron import EXAMPLE
from litequeue.cli.helpers import echo_json, json_option, parse_json, store, user_app
from litequeue.cli.root import ConfigError, main
from litequeue.ledger import queries

_APP_HELP = "The app (MODULE or MODULE:ATTR) whose tasks the schedules run."


def _lib() -> Any:
    """``litequeue.schedules`` (imports Huey): loaded by the commands that use it, so the
    CLI's read commands start without it."""
    from litequeue import schedules

    return schedules


def app_option(listing: bool = False) -> Any:
    more = " With it, its @periodic_task schedules are listed too." if listing else ""
    return click.option("--app", "app_spec", envvar="LITEQUEUE_APP", show_envvar=True, metavar="APP",
                        help=_APP_HELP + more)


@main.group()
def schedules() -> None:
    """Cron schedules kept in the database: add, list, pause, resume, remove, run now.

    Running consumers pick up every change from the next minute on, without a restart;
    each slot fires once however many consumers run. Schedules in code
    (@periodic_task) are listed too (with --app) but are read-only.
    """


@schedules.command("add")
@click.argument("name")
@click.option("--cron", required=True, metavar="EXPR", help=f"When to run, e.g. {EXAMPLE}; or @hourly, @daily...")
@click.option("--task", "task", required=True, metavar="TASK", help="The task to run (fn or module.fn).")
@click.option("--args", "args_json", metavar="JSON-LIST", help="Positional arguments, a JSON list.")
@click.option("--kwargs", "kwargs_json", metavar="JSON-OBJECT", help="Keyword arguments, a JSON object.")
@click.option("-q", "--queue", default=None, help="Queue (default: the task's own).")
@click.option("--priority", type=int, default=None, help="Higher runs first within a queue.")
@click.option("--timezone", default="UTC", metavar="ZONE",
              help="Read the cron expression on this zone's clock (IANA name, e.g. Europe/Berlin).")
@app_option()
def add(name: str, cron: str, task: str, args_json: str | None, kwargs_json: str | None,
        queue: str | None, priority: int | None, timezone: str, app_spec: str | None) -> None:
    """Store schedule NAME: run TASK on a cron expression (checked first: nothing is
    stored on an error)."""
    try:
        args = parse_json(args_json, list, "--args")
        kwargs = parse_json(kwargs_json, dict, "--kwargs")
    except click.BadParameter as exc:  # one line, like every other mistake in a schedule
        raise ConfigError(exc.format_message()) from None
    lq = user_app(app_spec)
    row = _lib().add(lq, name, cron, task, args, kwargs, queue=queue, priority=priority, timezone=timezone)
    nxt = queries.iso(_lib().cron_of(row["cron"], timezone).next_after(time.time()))
    click.echo(f"added schedule {name}: {task} at {cron!r} ({timezone}); next run "
               f"{_when(nxt) + ' UTC' if nxt else 'not within 31 days'}")


@schedules.command("list")
@app_option(listing=True)
@json_option
@click.pass_context
def list_(ctx: click.Context, app_spec: str | None, as_json: bool) -> None:
    """Every schedule with its next run, last run and whether it is enabled."""
    if app_spec:
        lq = user_app(app_spec)
        rows = _lib().listing(lq.storage.database, lq)
    else:
        rows = _lib().listing(store(ctx).database)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no schedules" + ("" if app_spec else " in the database (give --app to list those in code)"))
        return
    click.echo(f"{'NAME':<24}{'SCHEDULE':<28}{'TASK':<28}{'ENABLED':<9}{'NEXT RUN (UTC)':<21}LAST RUN (UTC)")
    for s in rows:
        when = "in code (read-only)" if s["read_only"] else (
            s["cron"] + ("" if s["timezone"] == "UTC" else f" {s['timezone']}"))
        last = s["last_run"]
        click.echo(f"{s['name']:<24}{when:<28}{s['task']:<28}{'yes' if s['enabled'] else 'paused':<9}"
                   f"{_when(s['next_run']) if s['next_run'] else '-':<21}"
                   f"{last['slot'].replace('T', ' ') + ' ' + (last['status'] or '') if last else 'never'}")
    if not app_spec and not os.environ.get("LITEQUEUE_APP"):
        click.echo("(give --app to list the schedules in code too)")


def _when(iso: str) -> str:
    return iso[:16].replace("T", " ")


@schedules.command()
@click.argument("name")
@click.pass_context
def pause(ctx: click.Context, name: str) -> None:
    """Stop schedule NAME from firing (from the next minute; `resume` restarts it)."""
    _set_enabled(ctx, name, False)


@schedules.command()
@click.argument("name")
@click.pass_context
def resume(ctx: click.Context, name: str) -> None:
    """Let schedule NAME fire again from its next slot (missed slots are not made up)."""
    _set_enabled(ctx, name, True)


def _set_enabled(ctx: click.Context, name: str, enabled: bool) -> None:
    """`pause` (``enabled=False``) or `resume` schedule NAME and say whether it changed."""
    changed = _lib().set_enabled(store(ctx), name, enabled)
    if enabled:
        click.echo(f"resumed schedule {name}" if changed else f"schedule {name} was not paused")
    else:
        click.echo(f"paused schedule {name}" if changed else f"schedule {name} was paused already")


@schedules.command()
@click.argument("name")
@click.pass_context
def remove(ctx: click.Context, name: str) -> None:
    """Delete schedule NAME (its past runs stay in the ledger)."""
    _lib().remove(store(ctx), name)
    click.echo(f"removed schedule {name}")


@schedules.command()
@click.argument("name")
@app_option()
def run(name: str, app_spec: str | None) -> None:
    """Enqueue one run of schedule NAME now (also a paused one, or a schedule in code) and
    print the job id."""
    click.echo(_lib().run_now(user_app(app_spec), name))
