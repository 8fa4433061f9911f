"""What follows a committed ack: the outcomes the fence dropped said in the log, the
observers (metrics, ``on_finished`` hooks) told, and whether the doorbell must ring.
Shared by the thread dispatcher, the worker-process pipes and a job run in place."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from litequeue.base.values import Finished

log = logging.getLogger("litequeue.pool")

Observer = Callable[[Sequence[Finished]], None]


def notify(observers: Sequence[Observer], items: Sequence[Finished]) -> None:
    for observer in observers:
        try:
            observer(items)
        except Exception:  # noqa: BLE001 - observers can never kill a worker
            log.exception("observer %r failed", observer)


UNRECORDED = "; its start was never recorded, so no attempt in the ledger holds this run"


def log_dropped(batch: Sequence[Finished], acked: Sequence[Finished]) -> None:
    """Say which outcomes the fenced ack dropped: their claims were no longer ours."""
    if len(acked) == len(batch):
        return
    kept = {id(i.claim) for i in acked}
    for item in batch:
        if id(item.claim) not in kept:
            unseen = item.claim.start_refused or item.claim.pending_start  # taken ahead, never recorded
            log.warning("job %s: its claim was taken over (this consumer was presumed dead); this run's outcome "
                        "(%s) is dropped%s", item.claim.job_id, item.status.value, UNRECORDED if unseen else "",
                        extra={"action": "fenced", "job_id": item.claim.job_id})


def adds_ready_jobs(items: Sequence[Finished]) -> bool:
    """Did acking ``items`` make jobs ready (follow-up jobs, batch members or callbacks)?
    Then the consumers' doorbell rings."""
    return any(i.unit and (i.unit.rings or any(not j.waiting for j in i.unit.jobs)) for i in items)
