"""Where the ledger is *shown*: the read queries of the CLI, the web page and metrics, one module
per question, every public name re-exported here (``litequeue.ledger.queries.get_job`` is the
documented path). Every function takes a peewee database (read-only connections work) and
never unpickles anything.

* :mod:`._common`: the job row's fields and its JSON form, shared by the others;
* :mod:`.queues`: counts per queue and status (estimates past a bound on PostgreSQL);
* :mod:`.jobs`: job lists and detail, facets, tags;
* :mod:`.activity`: counts and activity over time, events, periodic runs, inbox counts, schedules;
* :mod:`.holders`: consumers and the claims, locks and cancel requests they hold;
* :mod:`.batches`: batches and their members;
* :mod:`.limits`: concurrency limits, breakers, rate-limited jobs, why a job is held;
* :mod:`.now`: running jobs, a queue's last hour, processed totals, list totals (the status page's).
"""

from litequeue.ledger.queries._common import (
    COUNTED,
    JOB_FIELDS,
    NOT_SCHEDULED,
    dict_rows,
    has_schema,
    iso,
    job_dict,
    ping,
    progress_view,
)
from litequeue.ledger.queries.activity import (
    finished_counters,
    finished_since,
    inbox_counts,
    periodic_last_runs,
    periodic_runs,
    queue_throughput,
    recent_activity,
    recent_events,
    running_since,
    schedules,
)
from litequeue.ledger.queries.batches import (
    batch_failed_ids,
    batch_member_count,
    batch_members,
    batch_of_job,
    get_batch,
    list_batches,
)
from litequeue.ledger.queries.holders import (
    advisory_locks_held,
    cancel_requests,
    claims_by_holder,
    consumer_request,
    consumers,
    registered_consumers,
)
from litequeue.ledger.queries.jobs import (
    count_matching,
    failed_job_ids,
    get_job,
    job_facets,
    job_filter,
    job_payload,
    list_jobs,
    matching_ids,
    queued_count_with_tag,
    tag_facets,
    tag_progress,
    unfinished_ids_with_tag,
    with_tags,
)
from litequeue.ledger.queries.limits import RATE_LIMITED, breakers, concurrency_limits, held_reason, rate_limited
from litequeue.ledger.queries.now import (
    COUNT_CAP,
    count_capped,
    counted,
    counted_by_queue,
    final_ids,
    oldest_job,
    processed,
    queue_hour,
    retried_failed,
    running_jobs,
)
from litequeue.ledger.queries.queues import (
    EXACT_UP_TO,
    SAMPLE_PAGES,
    due_by_queue,
    paused_rows,
    planner_rows,
    queue_summary,
    queued_count,
    ready_by_queue,
    sampled_rows,
    server_counts,
)

__all__ = [
    "COUNTED", "COUNT_CAP", "EXACT_UP_TO", "JOB_FIELDS", "NOT_SCHEDULED", "RATE_LIMITED", "SAMPLE_PAGES",
    "advisory_locks_held", "batch_failed_ids", "batch_member_count", "batch_members", "batch_of_job", "breakers",
    "cancel_requests", "claims_by_holder", "concurrency_limits", "consumer_request", "consumers", "count_capped",
    "count_matching", "counted", "counted_by_queue", "dict_rows", "due_by_queue", "failed_job_ids", "final_ids",
    "finished_counters", "finished_since", "get_batch", "get_job", "has_schema", "held_reason", "inbox_counts",
    "iso", "job_dict", "job_facets", "job_filter", "job_payload", "list_batches", "list_jobs", "matching_ids",
    "oldest_job", "paused_rows", "periodic_last_runs", "periodic_runs", "ping", "planner_rows", "processed",
    "progress_view", "queue_hour", "queue_summary", "queue_throughput", "queued_count", "queued_count_with_tag",
    "rate_limited", "ready_by_queue", "recent_activity", "recent_events", "registered_consumers", "retried_failed",
    "running_jobs", "running_since", "sampled_rows", "schedules", "server_counts", "tag_facets", "tag_progress",
    "unfinished_ids_with_tag", "with_tags",
]
