"""The commands for running litequeue on a server: ``litequeue health``, ``doctor`` and ``systemd``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from litequeue.base import defaults
from litequeue.cli.helpers import db_option, echo_json, json_option
from litequeue.cli.root import main
from litequeue.ops import doctor, health, systemd
from litequeue.store.database import database_target, is_url

_defaults = health.Thresholds()


@main.command("health")
@json_option
@db_option
@click.option("--max-queued-age", type=click.FloatRange(0), default=_defaults.max_queued_age, metavar="SECONDS",
              help="Degraded when a queue's oldest queued job waited longer.")
@click.option("--max-failure-rate", type=click.FloatRange(0, 1), default=_defaults.max_failure_rate,
              metavar="FRACTION", help=f"Degraded when more of the jobs finished in the last hour failed "
                                       f"(and at least {health.MIN_FAILURES} did).")
@click.option("--max-running-age", type=click.FloatRange(0), default=None, metavar="SECONDS",
              help="Degraded when a job has been running longer (default: no limit).")
@click.option("--max-heartbeat-age", type=click.FloatRange(0), default=_defaults.max_heartbeat_age,
              metavar="SECONDS", help="Degraded when a live consumer wrote no heartbeat for longer.")
@click.option("--timeout", type=click.FloatRange(0), default=_defaults.busy_timeout, metavar="SECONDS",
              help="How long to wait for the database write lock.")
@click.pass_context
def health_command(ctx: click.Context, as_json: bool, db: str | None, max_queued_age: float,
                   max_failure_rate: float, max_running_age: float | None, max_heartbeat_age: float,
                   timeout: float) -> None:
    """Answer healthy (exit 0), degraded (exit 1) or unhealthy (exit 2), with reasons.

    Unhealthy: the database cannot be opened or written, or a queue has jobs and no live
    consumer serves it. Degraded: a queue's oldest job waited too long, too many jobs
    failed in the last hour, a consumer stopped writing heartbeats, or (with
    --max-running-age) a job runs too long. For cron, monitoring and container checks.
    """
    thresholds = health.Thresholds(max_queued_age=max_queued_age, max_failure_rate=max_failure_rate,
                                   max_heartbeat_age=max_heartbeat_age, max_running_age=max_running_age,
                                   busy_timeout=timeout)
    report = health.check(db or ctx.obj.get("db"), thresholds)
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(report.status)
        for reason in report.reasons:
            click.echo(f"- {reason}")
    ctx.exit(report.exit_status)


@main.command("doctor")
@json_option
@db_option
@click.option("--inbox", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Inbox folder to check (default: the one watch-inbox gets from the config file).")
@click.pass_context
def doctor_command(ctx: click.Context, as_json: bool, db: str | None, inbox: str | None) -> None:
    """Check this installation: config sources, APP import, database file and filesystem,
    SQLite version and journal mode, inotify limits, inbox folders, stale consumers,
    orphaned claims, and the health answer. Exit 1 when something is broken."""
    target = database_target(db or ctx.obj.get("db"))
    root = ctx.find_root()
    settings = ctx.obj.get("settings", {})
    app = settings.get("app") or os.environ.get("LITEQUEUE_APP") or \
        (root.default_map or {}).get("run-consumer", {}).get("app")
    findings = doctor.check_config(ctx.obj["config"], settings, ctx.obj.get("sources", {}))
    findings += doctor.check_app(app, target)
    findings += doctor.check_database(target)
    findings += doctor.check_inotify()
    findings += doctor.check_inbox(inbox or _configured_inbox(root))
    findings += _consumers(target)
    findings += doctor.check_health(target)
    broken = any(f.level == doctor.FAIL for f in findings)
    if as_json:
        echo_json({"ok": not broken, "findings": [f.to_dict() for f in findings]})
    else:
        topic = None
        for f in findings:
            if f.topic != topic:
                topic = f.topic
                click.echo(f"{topic}")
            click.echo(f"  {f.level:<5} {f.message}")
        click.echo("\n" + ("something is broken: see the fail lines above" if broken else "no failures"))
    ctx.exit(1 if broken else 0)


def _configured_inbox(root: click.Context) -> str | None:
    section = (root.default_map or {}).get("watch-inbox", {})
    for key in ("inbox", "folder", "path", "directory"):
        if isinstance(section.get(key), str):
            return section[key]
    return None


def _consumers(target: str) -> list[doctor.Finding]:
    from litequeue.base.errors import LiteQueueError
    from litequeue.engine.storage import open_store

    try:
        store = open_store(target, readonly=not is_url(target))
    except (LiteQueueError, OSError) as exc:
        return [doctor.Finding(doctor.FAIL, "consumers", f"cannot read the consumers: {exc}")]
    try:
        return doctor.check_consumers(store.database)
    finally:
        store.database.close()


@main.command("systemd")
@click.option("--print", "print_", is_flag=True, help="Print the units.")
@click.option("--output-dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Write the units into DIR (e.g. /etc/systemd/system).")
@click.option("--user", default="litequeue", help="User (and group) the services run as.")
@click.option("--workdir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Working directory: the folder that holds your tasks module [default: current].")
@click.option("--db", default=None, metavar="PATH|URL",
              help="Database [default: --db/LITEQUEUE_DB of this command, else /var/lib/litequeue/litequeue.db].")
@click.option("--inbox", default="/var/lib/litequeue/inbox", metavar="DIR", help="The watched inbox.")
@click.option("--app", default=None, metavar="APP",
              help="APP for every unit [default: --app/LITEQUEUE_APP of this command; else set it in "
                   "the environment file].")
@click.option("--shutdown-timeout", type=click.FloatRange(0), default=defaults.SHUTDOWN_TIMEOUT,
              metavar="SECONDS", help="Seconds running jobs get on stop (TimeoutStopSec is 15 s more).")
@click.option("--env-file", default=systemd.ENV_FILE, metavar="FILE", help="Environment file the units read.")
@click.pass_context
def systemd_command(ctx: click.Context, print_: bool, output_dir: str | None, user: str, workdir: str | None,
                    db: str | None, inbox: str, app: str | None, shutdown_timeout: float, env_file: str) -> None:
    """Write systemd units filled in with this installation's paths.

    litequeue-consumer@.service (one instance per queue: litequeue-consumer@mail),
    litequeue-inbox.service, litequeue-web.service and litequeue.target.
    """
    if not print_ and not output_dir:
        raise click.UsageError("give --print or --output-dir DIR")
    workdir = os.path.abspath(workdir or os.getcwd())
    target = db or ctx.obj.get("db") or os.environ.get("LITEQUEUE_DB")
    if target and not is_url(target):
        target = os.path.abspath(target)
    settings = systemd.Settings(
        command=systemd.litequeue_command(), user=user, workdir=workdir,
        db=target or systemd.Settings.db, inbox=os.path.abspath(inbox),
        app=app or ctx.obj.get("settings", {}).get("app") or os.environ.get("LITEQUEUE_APP"),
        shutdown_timeout=shutdown_timeout, env_file=env_file)
    units = systemd.render(settings)
    if output_dir:
        folder = Path(output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in units.items():
            (folder / name).write_text(text)
            click.echo(f"wrote {folder / name}", err=True)
    if print_:
        for name, text in units.items():
            click.echo(f"# ---- {name} ----")
            click.echo(text)
