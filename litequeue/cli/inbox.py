"""The ``litequeue watch-inbox`` command, and the inbox lines of ``litequeue status``."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from litequeue.base.errors import LiteQueueError
from litequeue.cli.helpers import setup_logging, user_app
from litequeue.cli.migrate import no_migrate_option, prepare_database
from litequeue.cli.root import main, status_extras, status_printers
from litequeue.store import file_identity

if TYPE_CHECKING:
    import peewee as pw


@main.command("watch-inbox")
@click.argument("inbox", type=click.Path(file_okay=False, path_type=Path), required=False)
@click.option("--rule", "rules", multiple=True, metavar="GLOB=TASK", required=True,
              help="Files matching GLOB (relative to INBOX; '*' stays in one folder, '**' crosses "
                   "folders) become jobs of TASK. Repeat; the first match wins.")
@click.option("--app", "app_spec", envvar="LITEQUEUE_APP", show_envvar=True, metavar="APP",
              help="The app that defines the tasks (MODULE or MODULE:ATTR).")
@click.option("--recursive", is_flag=True, help="Watch subfolders too.")
@click.option("--poll", type=click.FloatRange(0.05), default=None, metavar="SECONDS",
              help="Poll the folder this often instead of using inotify (network shares).")
@click.option("--settle", type=click.FloatRange(0), default=1.0, metavar="SECONDS",
              help="Without a close or rename event, take a file once its size and mtime have "
                   "not changed for this long.")
@click.option("--rescan", type=click.FloatRange(0.1), default=30.0, metavar="SECONDS",
              help="Rescan the inbox and repair the processing folder this often.")
@click.option("--dedupe", is_flag=True, help="A file whose SHA-256 was already taken goes to the "
                                             "duplicates folder instead of making a job.")
@click.option("--processing-dir", default=".processing", help="Folder (in INBOX) for files whose job runs.")
@click.option("--done-dir", default="done", help="Folder (in INBOX) for files whose job succeeded.")
@click.option("--failed-dir", default="failed", help="Folder (in INBOX) for files whose job failed.")
@click.option("--duplicates-dir", default="duplicates", help="Folder (in INBOX) for duplicates (--dedupe).")
@click.option("--oneshot", is_flag=True, help="Take the files there now, then exit.")
@click.option("--wait", is_flag=True, help="With --oneshot: wait until their jobs have finished; "
                                           "exit 1 if any failed.")
@click.option("--timeout", type=click.FloatRange(0), default=None, metavar="SECONDS",
              help="With --wait: give up after this long (exit 1).")
@no_migrate_option
@click.pass_context
def watch_inbox(ctx: click.Context, inbox: Path | None, rules: tuple[str, ...], app_spec: str | None,
                recursive: bool, poll: float | None, settle: float, rescan: float, dedupe: bool,
                processing_dir: str, done_dir: str, failed_dir: str, duplicates_dir: str,
                oneshot: bool, wait: bool, timeout: float | None, no_migrate: bool) -> None:
    """Turn each complete file dropped into INBOX into one job of the task its rule names.

    The file waits in INBOX/.processing/ while its job runs, then moves to INBOX/done/ or
    INBOX/failed/ (with NAME.error.txt). Unmatched, hidden and partial files stay put.
    SIGTERM or Ctrl-C stops the watcher; files already taken are not affected.
    """
    from litequeue.inbox.layout import Layout, Rule
    from litequeue.inbox.watcher import Options, Watcher

    if inbox is None:
        raise click.UsageError("give the INBOX folder (or `inbox = \"DIR\"` under [watch-inbox] in litequeue.toml)")
    if wait and not oneshot:
        raise click.UsageError("--wait only works with --oneshot")
    setup_logging(ctx.obj["log_level"])
    parsed = []
    for text in rules:
        try:
            parsed.append(Rule.parse(text))
        except LiteQueueError as exc:
            raise click.BadParameter(str(exc), param_hint="--rule") from None
    layout = Layout(inbox.resolve(), tuple(parsed), processing_dir, done_dir, failed_dir, duplicates_dir,
                    recursive, dedupe)
    prepare_database(ctx, no_migrate)
    lq = user_app(app_spec)
    watcher = Watcher(lq, layout, Options(poll=poll, settle=settle, rescan=rescan))

    def stop(signum: int, frame: Any) -> None:
        watcher.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if not oneshot:
        click.echo(f"watching {layout.root} ({'polling' if poll else 'inotify'}); Ctrl-C to stop", err=True)
        # A job written to a deleted or replaced database file would be lost: restart in
        # place (the new process rescans the inbox), as a consumer does.
        file_identity.watch(lq.db_identity, _restart_watcher, watcher.stop)
        watcher.run()
        return
    try:
        states = watcher.oneshot(wait=wait, timeout=timeout)
    except TimeoutError:
        raise click.ClickException(f"the jobs did not all finish within {timeout}s; their files are "
                                   f"still in {layout.root / layout.processing}") from None
    taken = watcher.stats.taken
    summary = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "nothing"
    click.echo(f"took {taken} file(s), {watcher.stats.duplicates} duplicate(s): {summary}")
    if wait and states.get("failed", 0):
        raise click.ClickException(f"{states['failed']} file(s) failed; see {layout.folder(layout.failed)}")


def _restart_watcher(message: str) -> None:
    from litequeue.runtime.restart import restart_in_place  # lazy: read commands import no runtime

    logging.getLogger("litequeue.inbox").error(
        "%s; restarting to write to the file now at that path", message, extra={"action": "database-replaced"})
    restart_in_place()


def inbox_extra(database: pw.Database) -> dict[str, Any]:
    try:
        from litequeue.inbox.status import inbox_summary
    except ImportError:  # the inbox plugin is not installed
        return {}
    return {"inboxes": inbox_summary(database)}


def print_inboxes(data: dict[str, Any]) -> None:
    inboxes = data.get("inboxes") or []
    if not inboxes:
        return
    click.echo(f"\n{'INBOX':<40}{'WAITING':>8}{'PROCESSING':>11}{'DONE':>7}{'FAILED':>7}  WATCHER")
    for box in inboxes:
        watcher = f"pid {box['watcher_pid']}" if box["watcher_pid"] else "not running"
        click.echo(f"{box['path']:<40}{box['waiting']:>8}{box['processing']:>11}{box['done']:>7}"
                   f"{box['failed']:>7}  {watcher}")
        if box["unmatched_count"]:
            more = box["unmatched_count"] - len(box["unmatched"])
            names = ", ".join(box["unmatched"]) + (f" (+{more} more)" if more else "")
            click.echo(f"  {box['unmatched_count']} file(s) match no rule: {names}")


status_extras.append(inbox_extra)
status_printers.append(print_inboxes)
