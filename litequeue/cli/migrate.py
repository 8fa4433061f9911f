"""The ``litequeue migrate`` command, and the migration step (``--no-migrate``) of the commands
that run for a long time."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import click

from litequeue.base import defaults
from litequeue.cli.root import main
from litequeue.store import migrations
from litequeue.store.database import database_target, is_url, open_database, sqlite_path

log = logging.getLogger("litequeue.migrations")
F = Callable[..., Any]


def _open(target: str | None, *, readonly: bool = False, create: bool = True) -> Any:
    busy = float(os.environ.get("LITEQUEUE_BUSY_TIMEOUT") or defaults.BUSY_TIMEOUT)
    name = database_target(target)
    # Read-only opening keeps even the switch to WAL mode from writing the file.
    return open_database(name, busy_timeout=busy, readonly=readonly and not is_url(name), create=create)


@main.command("migrate")
@click.option("--dry-run", is_flag=True, help="Only list the migrations that would be applied.")
@click.pass_context
def migrate(ctx: click.Context, dry_run: bool) -> None:
    """Bring the database's schema up to this litequeue's version (creating it if new).

    Prints each migration applied, or "schema is up to date (version N)". Safe to run
    twice or from several processes at once: each migration is applied once. A database
    newer than this litequeue is refused (exit 2) and nothing is written.
    """
    path = sqlite_path(database_target(ctx.obj.get("db")))
    if dry_run and path is not None and path != ":memory:" and not os.path.exists(path):
        lines = [f"would apply {m.version}: {m.description}" for m in migrations.MIGRATIONS]
        click.echo("\n".join([f"no database at {path} yet: it would be created", *lines]))
        return
    database = _open(ctx.obj.get("db"), readonly=dry_run, create=not dry_run)
    try:
        lines = migrations.apply(database, dry_run=dry_run)
    finally:
        database.close()
    for line in lines:
        click.echo(line)
    if not lines:
        click.echo(f"schema is up to date (version {migrations.VERSION})")


def no_migrate_option(f: F) -> F:
    return click.option("--no-migrate", is_flag=True,
                        help="Do not apply pending schema migrations on start: refuse an out-of-date "
                             "database instead (run `litequeue migrate` first).")(f)


def prepare_database(ctx: click.Context, no_migrate: bool, *, create: bool = True) -> None:
    """Before a long-running command imports the app: apply pending migrations, or with
    ``--no-migrate`` refuse an out-of-date database. A newer database is refused either way.
    ``create=False``: a SQLite file that does not exist yet is left alone."""
    target = database_target(ctx.obj.get("db"))
    if no_migrate:
        # The app's own storage would otherwise migrate when the app is imported. For this
        # command only: the CLI also runs in-process (Django's manage.py, click's test runner).
        before = migrations.auto_migrate
        migrations.auto_migrate = False
        ctx.call_on_close(lambda: setattr(migrations, "auto_migrate", before))
    path = sqlite_path(target)
    if not create and path is not None and path != ":memory:" and not os.path.exists(path):
        return
    database = _open(target, readonly=no_migrate, create=create)
    try:
        if no_migrate:
            migrations.check(database)
            return
        existing = database.table_exists("lq_meta")
        for line in migrations.apply(database):
            log.log(logging.INFO if existing else logging.DEBUG, "schema migration %s", line)
    finally:
        database.close()
