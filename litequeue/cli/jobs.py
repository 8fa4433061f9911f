"""The job commands: ``litequeue enqueue``, ``status``, ``jobs list|show|retry|cancel`` and ``tasks``."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import click
import peewee as pw

from litequeue.base.errors import JobNotFoundError
from litequeue.base.states import JobStatus
from litequeue.base.usage import size
from litequeue.cli.helpers import app_argument, echo_json, json_option, ledger, parse_json, store, user_app
from litequeue.cli.progress import progress
from litequeue.cli.replay import jobs_replay
from litequeue.cli.root import main, status_extras, status_printers
from litequeue.ledger import queries


@main.command()
@click.argument("task")
@click.option("--args", "args_json", metavar="JSON-LIST", help="Positional arguments, a JSON list.")
@click.option("--kwargs", "kwargs_json", metavar="JSON-OBJECT", help="Keyword arguments, a JSON object.")
@click.option("-q", "--queue", default=None, help="Queue (default: the task's own).")
@click.option("--priority", type=int, default=None, help="Higher runs first within a queue.")
@click.option("--delay", type=click.FloatRange(0), default=None, help="Run after this many seconds.")
@click.option("--tag", "tags", multiple=True, help="Tag the job (repeat for more tags).")
@click.option("--wait", is_flag=True, help="Wait for the job and print its result.")
@click.option("--timeout", type=click.FloatRange(0), default=None, help="With --wait: give up after this many seconds.")
@click.option("--app", "app_spec", envvar="LITEQUEUE_APP", show_envvar=True, metavar="APP",
              help="The app that defines TASK (MODULE or MODULE:ATTR).")
def enqueue(task: str, args_json: str | None, kwargs_json: str | None, queue: str | None,
            priority: int | None, delay: float | None, tags: tuple[str, ...], wait: bool,
            timeout: float | None, app_spec: str | None) -> None:
    """Enqueue TASK (its name, or module.name) and print the new job id."""
    args = parse_json(args_json, list, "--args")
    kwargs = parse_json(kwargs_json, dict, "--kwargs")
    lq = user_app(app_spec)
    result = lq.enqueue_by_name(task, args, kwargs, queue=queue, priority=priority, delay=delay,
                                tags=list(tags))
    if result is None:
        return
    click.echo(result.id)
    if wait:
        from huey.exceptions import ResultTimeout, TaskException

        try:
            value = result.get(blocking=True, timeout=timeout)
        except ResultTimeout:
            raise click.ClickException(f"job {result.id} did not finish within {timeout}s; "
                                       "it is still queued or running") from None
        except TaskException as exc:
            raise click.ClickException(f"job {result.id} failed: {exc.metadata.get('error')}") from None
        click.echo(repr(value) if not isinstance(value, str) else value)


@main.command()
@click.option("--by-tag", "by_tag", default=None, metavar="PREFIX",
              help="Instead: per tag starting with PREFIX, per task, jobs succeeded of all (site:acme  ocr 23/50).")
@json_option
@click.pass_context
def status(ctx: click.Context, by_tag: str | None, as_json: bool) -> None:
    """Per queue: scheduled, queued, running, failed jobs, the oldest queued job's age;
    and the consumers alive. With --by-tag: the progress of each tag's jobs."""
    # Read commands open the ledger alone: no Huey, no storage (start-up time).
    db = ledger(ctx)
    if by_tag is not None:
        _status_by_tag(db, by_tag, as_json)
        return
    data = {"queues": queries.queue_summary(db),
            "consumers": queries.consumers(db, alive_only=True)}
    for extra in status_extras:
        data.update(extra(db))
    if as_json:
        echo_json(data)
        return
    if not data["queues"]:
        if queries.list_jobs(db, limit=1):
            recent = queries.finished_since(db, time.time() - 3600).get(JobStatus.SUCCEEDED.value, 0)
            click.echo(f"all queues empty; {recent} succeeded in the last hour")
        else:
            click.echo("no jobs yet")
    else:
        click.echo(f"{'QUEUE':<16}{'SCHEDULED':>10}{'QUEUED':>8}{'RUNNING':>9}{'RETRYING':>10}"
                   f"{'FAILED':>8}  OLDEST QUEUED")
        for name, q in data["queues"].items():
            age = q["oldest_queued_age_s"]
            flag = "  (paused)" if q["paused"] else ""
            n = {k: f"~{q[k]}" if k in q.get("estimated", ()) else str(q[k])
                 for k in ("scheduled", "queued", "running", "retrying", "failed")}
            click.echo(f"{name:<16}{n['scheduled']:>10}{n['queued']:>8}{n['running']:>9}"
                       f"{n['retrying']:>10}{n['failed']:>8}  {_age(age)}{flag}")
    if any(q.get("estimated") for q in data["queues"].values()):
        click.echo(f"~ estimated by the database server (counted exactly up to {queries.EXACT_UP_TO})")
    alive = data["consumers"]
    click.echo(f"\nconsumers alive: {len(alive)}")
    for c in alive:
        click.echo(f"  {c['id']}  {c['concurrency']} {c['worker_type']}(s)  queues: "
                   f"{','.join(c['queues']) or 'all'}  heartbeat {c['heartbeat_age_s']}s ago")
    for printer in status_printers:
        printer(data)


def _status_by_tag(db: pw.Database, prefix: str, as_json: bool) -> None:
    tags = queries.tag_progress(db, prefix)
    if as_json:
        echo_json({"tags": tags})
        return
    if not tags:
        click.echo(f"no jobs with a tag starting with {prefix!r}")
        return
    width = max(len(t) for t in tags)
    task_width = max(len(task) for per_task in tags.values() for task in per_task)
    for tag, per_task in tags.items():
        for task, counts in per_task.items():
            others = ", ".join(f"{counts[st]} {st}" for st in _UNDONE if counts.get(st))
            click.echo(f"{tag:<{width}}  {task:<{task_width}}  {counts['done']}/{counts['total']}"
                       + (f"  ({others})" if others else ""))


_UNDONE = ("failed", "cancelled", "expired", "running", "retrying", "queued", "scheduled", "waiting")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


@main.group()
def jobs() -> None:
    """List, show, retry and cancel jobs."""


jobs.add_command(jobs_replay)


@jobs.command("list")
@click.option("--status", "status_", type=click.Choice([
    "waiting", "scheduled", "queued", "running", "retrying", "succeeded", "failed", "cancelled",
    "expired"]), default=None, help="Only jobs in this status.")
@click.option("--queue", default=None, help="Only jobs of this queue.")
@click.option("--task", default=None, help="Only jobs of this task.")
@click.option("--search", default=None, help="Match id, argument text or error text.")
@click.option("--tag", default=None, help="Only jobs with this tag.")
@click.option("--limit", type=click.IntRange(1, 100000), default=50, help="At most this many.")
@json_option
@click.pass_context
def jobs_list(ctx: click.Context, status_: str | None, queue: str | None, task: str | None,
              search: str | None, tag: str | None, limit: int, as_json: bool) -> None:
    """Jobs, newest first."""
    rows = queries.list_jobs(ledger(ctx), status=status_, queue=queue, task=task,
                             search=search, limit=limit, tag=tag)
    if as_json:  # every object has every ledger field (null when empty); `jobs show` adds attempts etc.
        echo_json(rows)
        return
    for r in rows:
        err = f"  {r['error'][:60]}" if r.get("error") else ""
        tags = f"  [{', '.join(r['tags'])}]" if r.get("tags") else ""
        click.echo(f"{r['id']}  {r['status']:<10}{r['queue']:<12}{r['task']:<24}"
                   f"attempts={r['attempts']}{tags}{err}")


def used(attempt: dict[str, Any]) -> str:
    """``, CPU 0.52s, peak 212 MB (job)``: what an attempt used, when it was measured."""
    cpu, peak = attempt.get("cpu_seconds"), attempt.get("peak_rss_bytes")
    out = f", CPU {cpu:.3g}s" if cpu is not None else ""
    if peak is not None:
        out += f", peak {size(peak)} ({attempt.get('rss_scope')})"
    return out


@jobs.command("show")
@click.argument("job_id")
@json_option
@click.pass_context
def jobs_show(ctx: click.Context, job_id: str, as_json: bool) -> None:
    """Everything the ledger knows about one job, traceback included."""
    job = queries.get_job(ledger(ctx), job_id)
    if job is None:
        raise JobNotFoundError(f"no job {job_id!r} in the ledger; see `litequeue jobs list`")
    if as_json:
        echo_json(job)
        return
    for key in ("id", "task", "queue", "priority", "status", "held", "attempts", "crashes", "args",
                "kwargs", "enqueued_at", "eta", "started_at", "finished_at", "worker", "result",
                "error", "parent_id", "retried_from", "children", "retries", "tags", "depends_on",
                "dependents"):
        if job.get(key) not in (None, [], ""):
            value = job[key]
            if key == "depends_on":
                value = ", ".join(f"{d['id']} ({d['outcome'] or 'pending'})" for d in value)
            elif key in ("tags", "dependents"):
                value = ", ".join(value)
            click.echo(f"{key + ':':<14}{value}")
    if job.get("progress"):
        p = job["progress"]
        pct = f" ({p['percent']}%)" if "percent" in p else ""
        eta = f", about {p['eta_seconds']}s left" if "eta_seconds" in p else ""
        click.echo(f"{'progress:':<14}{p['done']:g}/{p['total']:g}{pct}{eta} {p.get('message') or ''}")
    if job.get("file"):
        f = job["file"]
        click.echo(f"{'file:':<14}{f['name']} ({f['size']} bytes, sha256 {f['sha256']}) now {f['path']}")
    for a in job["attempt_list"]:
        click.echo(f"attempt {a['number']}: {a['outcome']} on {a['worker']} at {a['started_at']}"
                   f" ({a['duration_s']}s{used(a)}){'  ' + a['error'] if a['error'] else ''}")
    if job.get("traceback"):
        click.echo("\n" + job["traceback"].rstrip())


@jobs.command("retry")
@click.argument("job_ids", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Retry every failed job.")
@click.option("--queue", default=None, help="With --all-failed: only this queue.")
@click.option("--task", default=None, help="With --all-failed: only this task.")
@click.option("--tag", default=None, help="With --all-failed: only jobs with this tag.")
@click.pass_context
def jobs_retry(ctx: click.Context, job_ids: tuple[str, ...], all_failed: bool, queue: str | None,
               task: str | None, tag: str | None) -> None:
    """Re-enqueue jobs with their original arguments (linked to the original)."""
    from litequeue.jobs import actions
    from litequeue.ops import plugins

    s = store(ctx)
    ids = list(job_ids)
    if tag is not None and not all_failed:
        raise click.UsageError("--tag goes with --all-failed (retry the failed jobs of a tag)")
    if not ids and not all_failed:
        raise click.UsageError("give job ids or --all-failed")
    if all_failed:
        ids += queries.failed_job_ids(s.database, queue=queue, task=task, tag=tag)
        if not ids:
            where = ", ".join(f"{name} {value}" for name, value in (("queue", queue), ("task", task), ("tag", tag))
                              if value is not None)
            click.echo("no failed jobs to retry" + (f" ({where})" if where else ""), err=True)
            return
    done = 0
    started = time.monotonic()
    batches = [ids[i:i + 500] for i in range(0, len(ids), 500)]
    # A single batch is checked whole before anything is written: no bar for it.
    with progress("retry", len(ids)) if len(batches) > 1 else contextlib.nullcontext(None) as report:
        for chunk in batches:
            mapping = actions.retry_jobs(s, chunk, hooks=plugins.retry_hooks())
            for old, new in mapping.items():
                click.echo(f"{old} -> {new}")
            done += len(mapping)
            if report is not None:
                report(done)
    click.echo(f"retried {done} job(s) in {time.monotonic() - started:.1f}s", err=True)


@jobs.command("cancel")
@click.argument("job_ids", nargs=-1)
@click.option("--tag", default=None, help="Cancel every job with this tag that has not ended.")
@click.option("--wait", "wait", type=click.FloatRange(0), default=None, metavar="S",
              help="Wait up to S seconds for running jobs to end and print how each ended "
                   "(exit 1 if one still runs).")
@click.pass_context
def jobs_cancel(ctx: click.Context, job_ids: tuple[str, ...], tag: str | None, wait: float | None) -> None:
    """Cancel waiting, queued or scheduled jobs; stop running ones.

    A running job is asked to stop (current_job().cancelled) and, if it has not stopped
    after its grace period (run-consumer --cancel-grace, 10 s by default), stopped."""
    from litequeue.jobs import actions

    s = store(ctx)
    ids = list(job_ids)
    if tag is not None:
        ids += queries.unfinished_ids_with_tag(s.database, tag)
        if not ids:
            click.echo(f"no unfinished job has tag {tag}")
            return
    if not ids:
        raise click.UsageError("give job ids or --tag")
    outcome = actions.cancel_jobs(s, list(dict.fromkeys(ids)), actor=actions.who("litequeue jobs cancel"))
    asked = [job_id for job_id, what in outcome.items() if what.startswith("cancel requested")]
    if wait is None or not asked:
        for job_id, what in outcome.items():
            click.echo(f"{job_id}: {what}")
        return
    for job_id, what in outcome.items():
        if job_id not in asked:
            click.echo(f"{job_id}: {what}")
    started = time.monotonic()
    ended = actions.wait_ended(s, asked, wait)
    still = 0
    for job_id in asked:
        job = ended[job_id] or {}
        status = job.get("status", "gone")
        if status == "running":
            still += 1
            click.echo(f"{job_id}: still running after {wait:g}s (cancel requested; it is stopped "
                       "after its grace period)")
        else:
            why = f" ({job['error']})" if job.get("error") else ""
            click.echo(f"{job_id}: {status} after {time.monotonic() - started:.1f}s{why}")
    if still:
        ctx.exit(1)


@main.command()
@app_argument
@json_option
def tasks(app: str | None, as_json: bool) -> None:
    """Tasks APP registers, with queue, priority, retries and schedule."""
    lq = user_app(app)
    rows = []
    for key in lq.task_names():
        cls = lq.task_class(key)
        periodic = hasattr(cls, "validate_datetime")
        rows.append({"name": cls.__name__, "qualified_name": key,
                     "queue": getattr(cls, "queue", "default"),
                     "priority": cls.default_priority or 0, "retries": cls.default_retries,
                     "schedule": "periodic (crontab)" if periodic else None})
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['name']:<28}queue={r['queue']:<12}priority={r['priority']:<4}"
                   f"retries={r['retries']}{'  ' + r['schedule'] if r['schedule'] else ''}")
