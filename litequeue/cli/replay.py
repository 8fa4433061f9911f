"""``litequeue jobs replay ID``: one job's task run again here, in the foreground, with the
job's exact stored arguments, in the current environment and code; nothing is recorded.

The payload is the pickled Huey message the ledger keeps for every job (``lq_job.payload``,
the one ``jobs retry`` re-enqueues). It is unpickled with the user's APP and its task body
run directly (``task.execute()``: the function with its stored args and kwargs), never
through a consumer, Huey's ``execute`` or a unit of work, so no job, attempt, result or
event is written. ``current_job()`` inside the task gives a :class:`ReplayContext`: the
job's id, task, queue and attempt; ``progress()`` is printed on stderr instead of
recorded, ``cancelled`` is always False and ``batch`` is None.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from types import TracebackType
from typing import TYPE_CHECKING, Any

import click

from litequeue.cli.helpers import ledger, user_app

if TYPE_CHECKING:
    from litequeue.engine.context import JobContext


class ReplayError(click.ClickException):
    """The job cannot be replayed (unknown id, task gone, arguments that do not unpickle):
    one line, exit status 2 (running it again will not help)."""

    exit_code = 2


def replay_context(job_id: str, task: str, queue: str, attempt: int, app: Any) -> JobContext:
    """What ``current_job()`` returns during a replay (see :class:`ReplayContext`)."""
    from litequeue.engine.context import JobContext

    class ReplayContext(JobContext):
        """``current_job()`` of a replayed job: reads only; progress goes to stderr."""

        def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
            now = time.monotonic()
            if (total is None or done < total) and now - self._last_progress < 0.5:
                return  # as often as the ledger would get it, at most
            self._last_progress = now
            of = f"/{total:g}" if total is not None else ""
            click.echo(f"progress {done:g}{of}{' ' + message if message else ''}", err=True)

        def flush(self) -> None:
            pass

        @property
        def cancelled_by(self) -> str | None:
            return None

        @property
        def batch(self) -> None:
            return None

    return ReplayContext(job_id, task, queue, attempt, app)


def _user_frames(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` without its leading frames of litequeue, Huey and click (the replay's own)."""
    import huey

    import litequeue

    internal = tuple(os.path.dirname(m.__file__ or "") + os.sep for m in (litequeue, huey, click))
    first = tb
    while first is not None and first.tb_frame.f_code.co_filename.startswith(internal):
        first = first.tb_next
    return first or tb


@click.command("replay")
@click.argument("job_id")
@click.option("--pdb", "post_mortem", is_flag=True,
              help="On an exception, open the post-mortem debugger where it was raised.")
@click.option("--app", "app_spec", envvar="LITEQUEUE_APP", show_envvar=True, metavar="APP",
              help="The app that defines the job's task (MODULE or MODULE:ATTR).")
@click.pass_context
def jobs_replay(ctx: click.Context, job_id: str, post_mortem: bool, app_spec: str | None) -> None:
    """Run job JOB_ID's task here, in the foreground, with its exact stored arguments,
    the current code and environment; print its result (exit 0) or its traceback (exit 1).

    Works for finished (failed, succeeded, cancelled) and unfinished jobs. litequeue
    writes nothing: no new job, no attempt, the job's record unchanged. What the task's
    own code does (files, requests, jobs it enqueues) it does again. An unknown job, a
    task the app no longer has or arguments that cannot be unpickled: one line, exit 2.
    """
    from huey.exceptions import HueyException

    from litequeue.engine.context import current_job, set_current_job
    from litequeue.ledger import queries

    row = queries.job_payload(ledger(ctx), job_id)
    if row is None:
        raise ReplayError(f"no job {job_id!r} in the ledger; see `litequeue jobs list`")
    if row["payload"] is None:
        raise ReplayError(f"job {job_id} has no stored payload to replay")
    app = user_app(app_spec)
    try:
        task = app.deserialize_task(row["payload"])
    except HueyException as exc:
        if "not found in TaskRegistry" not in str(exc):
            raise ReplayError(f"job {job_id}: its payload cannot be read ({exc})") from None
        name = str(exc).split(" not found", 1)[0] or row["task"]
        names = sorted(app.task_names())
        known = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        raise ReplayError(f"job {job_id}'s task {name!r} no longer exists in APP {app_spec}: "
                          f"it registers {known or 'no task'}") from None
    except Exception as exc:  # noqa: BLE001 - unpickling bytes can raise anything (OverflowError, KeyError, ...)
        reason = " ".join(str(exc).split())  # one line (some unpickler messages span two)
        raise ReplayError(f"job {job_id}'s arguments cannot be unpickled ({type(exc).__name__}: {reason}); "
                          "make the classes they name importable from APP") from None
    task.id = job_id  # a retried job carries its original's payload: the row's id wins
    name = type(task).__name__
    click.echo(f"replaying job {job_id} ({row['status']}): {name} in the foreground; nothing is recorded",
               err=True)
    outer = current_job()
    set_current_job(replay_context(job_id, name, row["queue"], max(1, row["attempts"]), app))
    try:
        value = task.execute()
    except Exception as exc:  # noqa: BLE001 - the task's own error is the answer
        tb = _user_frames(exc.__traceback__)
        traceback.print_exception(type(exc), exc, tb, file=sys.stderr)
        if post_mortem:
            import pdb

            pdb.post_mortem(tb)
        ctx.exit(1)
    finally:
        set_current_job(outer)
    click.echo(value if isinstance(value, str) else repr(value))
