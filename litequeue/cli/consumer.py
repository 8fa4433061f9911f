"""The ``litequeue run-consumer`` command: migrates the database, loads the app, its
``[queues.NAME]`` settings and plugins, and runs a consumer with automatic pruning."""

from __future__ import annotations

import logging

import click

from litequeue.base import defaults
from litequeue.cli.helpers import app_argument, setup_logging, user_app
from litequeue.cli.migrate import no_migrate_option, prepare_database
from litequeue.cli.root import main
from litequeue.jobs.retention import AutoPruner
from litequeue.ops import plugins


@main.command("run-consumer")
@app_argument
@click.option("-w", "--workers", type=click.IntRange(1, 512), default=defaults.WORKERS,
              show_envvar=True, help="How many jobs run at once.")
@click.option("-k", "--worker-type", type=click.Choice(["thread", "process", "asyncio"]),
              default=defaults.WORKER_TYPE, show_envvar=True,
              help="Run jobs in threads or processes; asyncio: -w async jobs at once on one event loop.")
@click.option("-Q", "--queues", default="", show_envvar=True, metavar="Q1,Q2",
              help="Serve only these queues, in this strict order (default: every queue).")
@click.option("--burst", is_flag=True, help="Drain the queues, then exit 0.")
@click.option("--max-tasks", type=click.IntRange(1), default=None,
              help="Recycle a worker after it ran this many jobs.")
@click.option("--shutdown-timeout", type=click.FloatRange(0), default=defaults.SHUTDOWN_TIMEOUT,
              show_envvar=True, help="Seconds running jobs get to finish on SIGTERM/SIGINT.")
@click.option("--no-periodic", is_flag=True, help="Do not fire periodic tasks from this consumer.")
@click.option("--keep-succeeded-days", type=click.FloatRange(0), default=defaults.KEEP_SUCCEEDED_DAYS,
              help="Prune succeeded jobs from the ledger after this many days.")
@click.option("--keep-failed-days", type=click.FloatRange(0), default=defaults.KEEP_FAILED_DAYS,
              help="Prune failed, cancelled and expired jobs after this many days.")
@click.option("--prune-every", type=click.FloatRange(0), default=600.0,
              help="Seconds between automatic prunes (shared by all consumers); 0 disables them.")
@click.option("--cancel-grace", type=click.FloatRange(0), default=defaults.CANCEL_GRACE, show_envvar=True,
              help="Seconds a cancelled running job has to stop by itself before it is stopped "
                   "(a task's cancel_grace wins).")
@click.option("--lease", type=click.FloatRange(2), default=defaults.HEARTBEAT_LEASE, show_envvar=True,
              help="Seconds without a heartbeat after which other consumers presume this one dead and take "
                   "its jobs (a host that vanished; a killed consumer is noticed at once).")
@no_migrate_option
@click.pass_context
def run_consumer(ctx: click.Context, app: str | None, workers: int, worker_type: str, queues: str,
                 burst: bool, max_tasks: int | None, shutdown_timeout: float, no_periodic: bool,
                 keep_succeeded_days: float, keep_failed_days: float, prune_every: float, cancel_grace: float,
                 lease: float,
                 no_migrate: bool) -> None:
    """Run the jobs of APP (MODULE or MODULE:ATTR, or $LITEQUEUE_APP).

    SIGTERM or Ctrl-C: stop taking jobs, let running ones finish, hand the rest back
    to the queue and exit 0; a second signal stops at once. SIGHUP restarts.
    """
    setup_logging(ctx.obj["log_level"])
    if ctx.obj["log_level"] > logging.DEBUG:
        # Our worker logs one line per job start and end; Huey's own lines would repeat them.
        logging.getLogger("huey").setLevel(logging.WARNING)
    prepare_database(ctx, no_migrate)
    lq = user_app(app)
    for queue, table in ctx.obj["config"].data.get("queues", {}).items():
        lq.configure_queue(queue, **table)  # [queues.NAME] concurrency / timeout
    plugins.install(lq)
    consumer = lq.create_consumer(
        workers=workers, worker_type=worker_type,
        queues=[q.strip() for q in queues.split(",") if q.strip()], burst=burst,
        max_tasks=max_tasks, shutdown_timeout=shutdown_timeout, periodic=not no_periodic,
        cancel_grace=cancel_grace, lease=lease,
        pruner=AutoPruner(keep_succeeded_days, keep_failed_days, interval=prune_every) if prune_every else False)
    consumer.run()
