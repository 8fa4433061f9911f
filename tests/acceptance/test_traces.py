"""OpenTelemetry traces across real processes: a producer enqueues inside its own span (the
SDK's in-memory exporter), a real consumer (thread and process workers) started with a small
module that sets an SDK tracer provider exporting every span to a file; the test reads the
spans back and checks the send and process spans, their trace, parents and attributes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import BOTH_BACKENDS, Project, wait_for

TASKS = """
from litequeue import LiteQueue

app = LiteQueue("traced")


@app.task(queue="mail")
def ok(x):
    return x


@app.task(queue="mail", retries=1)
def flaky():
    from litequeue import current_job
    if current_job().attempt == 1:
        raise ValueError("first try fails")
    return "second try"


@app.task(queue="mail")
def parent():
    return ok(99).id
"""

# The consumer's APP: sets an SDK tracer provider whose exporter appends each span, as one JSON
# line, to spans.jsonl (from the consumer and from each worker process alike), then the tasks.
TRACED = """
import json
import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult


class FileExporter(SpanExporter):
    def export(self, spans):
        with open(os.environ["SPANS_FILE"], "a") as f:
            for span in spans:
                f.write(json.dumps(json.loads(span.to_json())) + "\\n")
        return SpanExportResult.SUCCESS


provider = TracerProvider(resource=Resource.create({"service.name": "consumer"}))
provider.add_span_processor(SimpleSpanProcessor(FileExporter()))
trace.set_tracer_provider(provider)

from tasks import app  # noqa: E402
"""

# The producer: the SDK's in-memory exporter; its spans go to the same file at the end.
PRODUCE = """
import json
import os

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

memory = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(memory))
trace.set_tracer_provider(provider)

import tasks

with trace.get_tracer("shop").start_as_current_span("checkout"):
    ids = {"ok": tasks.ok(1).id, "flaky": tasks.flaky().id, "parent": tasks.parent().id}
with open(os.environ["SPANS_FILE"], "a") as f:
    for span in memory.get_finished_spans():
        f.write(json.dumps(json.loads(span.to_json())) + "\\n")
print(json.dumps(ids))
"""


def read_spans(project: Project) -> list[dict[str, Any]]:
    path = project.root / "spans.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def one(spans: list[dict[str, Any]], name: str, **attributes: Any) -> dict[str, Any]:
    found = [s for s in spans if s["name"] == name
             and all(s["attributes"].get(k) == v for k, v in attributes.items())]
    assert len(found) == 1, f"{len(found)} spans {name} {attributes}: {json.dumps(spans, indent=1)}"
    return found[0]


@BOTH_BACKENDS
@pytest.mark.parametrize("kind", ["thread", "process"])
def test_enqueue_and_attempt_spans_in_one_trace(project: Project, kind: str) -> None:
    project.write("tasks.py", TASKS)
    project.write("traced.py", TRACED)
    project.extra_env["SPANS_FILE"] = str(project.root / "spans.jsonl")
    ids = json.loads(project.python(PRODUCE).stdout.strip().splitlines()[-1])
    stored = dict(project.query("SELECT id, trace FROM lq_job"))
    args = ["-w", "2"] + (["-k", "process"] if kind == "process" else [])
    project.start_consumer("traced", *args)
    project.wait_status("succeeded", 4, timeout=60)
    spans = wait_for(lambda: (s := read_spans(project)) and
                     len([x for x in s if x["name"] == "process mail"]) == 5 and s, 20,
                     what="5 process spans (ok, flaky twice, parent, its child)")

    checkout = one(spans, "checkout")
    trace_id = checkout["context"]["trace_id"]
    for job in ("ok", "flaky", "parent"):
        send = one(spans, "send mail", **{"messaging.message.id": ids[job]})
        assert send["kind"] == "SpanKind.PRODUCER"
        assert send["context"]["trace_id"] == trace_id
        assert send["parent_id"] == checkout["context"]["span_id"]  # a child of the current span
        assert send["attributes"] == {
            "messaging.system": "litequeue", "messaging.operation.type": "send",
            "messaging.operation.name": "send", "messaging.destination.name": "mail",
            "messaging.message.id": ids[job], "litequeue.task": job}
        # The job carries its W3C traceparent: version, trace id, the send span's id, flags.
        span_id = send["context"]["span_id"][2:]
        version, trace_hex, parent_hex, flags = stored[ids[job]].split("-")
        assert (version, trace_hex, parent_hex) == ("00", trace_id[2:], span_id)
        assert int(flags, 16) & 1  # sampled

    send_ok = one(spans, "send mail", **{"messaging.message.id": ids["ok"]})
    run_ok = one(spans, "process mail", **{"messaging.message.id": ids["ok"]})
    assert run_ok["kind"] == "SpanKind.CONSUMER"
    assert run_ok["context"]["trace_id"] == trace_id
    assert run_ok["parent_id"] == send_ok["context"]["span_id"]
    assert run_ok["resource"]["attributes"]["service.name"] == "consumer"  # made in the consumer's provider
    assert run_ok["attributes"]["messaging.system"] == "litequeue"
    assert run_ok["attributes"]["messaging.destination.name"] == "mail"
    assert run_ok["attributes"]["litequeue.task"] == "ok"
    assert run_ok["attributes"]["litequeue.attempt"] == 1
    assert run_ok["status"]["status_code"] == "UNSET"

    # A failed attempt: status ERROR and the exception recorded; the retry is a new process
    # span, in the same trace, a child of the same send span.
    send_flaky = one(spans, "send mail", **{"messaging.message.id": ids["flaky"]})
    first = one(spans, "process mail", **{"messaging.message.id": ids["flaky"], "litequeue.attempt": 1})
    second = one(spans, "process mail", **{"messaging.message.id": ids["flaky"], "litequeue.attempt": 2})
    assert first["status"]["status_code"] == "ERROR"
    assert "first try fails" in first["status"]["description"]
    (event,) = [e for e in first["events"] if e["name"] == "exception"]
    assert event["attributes"]["exception.type"] == "ValueError"
    assert event["attributes"]["exception.message"] == "first try fails"
    assert second["status"]["status_code"] == "UNSET"
    for span in (first, second):
        assert span["context"]["trace_id"] == trace_id
        assert span["parent_id"] == send_flaky["context"]["span_id"]
    assert not [s for s in spans if s["name"] == "send mail"
                and s["attributes"]["messaging.message.id"] == ids["flaky"] and s is not send_flaky]

    # A job enqueued by a running job: its send span is a child of that job's process span.
    run_parent = one(spans, "process mail", **{"messaging.message.id": ids["parent"]})
    child_id = project.query("SELECT id FROM lq_job WHERE parent_id = ?", (ids["parent"],))[0][0]
    send_child = one(spans, "send mail", **{"messaging.message.id": child_id})
    assert send_child["parent_id"] == run_parent["context"]["span_id"]
    run_child = one(spans, "process mail", **{"messaging.message.id": child_id})
    assert run_child["parent_id"] == send_child["context"]["span_id"]
    assert {s["context"]["trace_id"] for s in spans} == {trace_id}


def test_no_tracer_provider_no_trace(project: Project) -> None:
    """Without a tracer provider, or without the opentelemetry package, nothing is traced
    and jobs run as ever."""
    project.write("tasks.py", TASKS)
    out = project.python("""
        from opentelemetry import trace  # imported (redis imports it too), but no provider set
        import tasks
        from litequeue.base import tracing
        with trace.get_tracer("x").start_as_current_span("not recorded"):
            print(tasks.ok(1).id, tracing.active())
    """).stdout.split()
    assert out[1] == "False"
    missing = project.python("""
        import sys
        sys.modules["opentelemetry"] = None  # as if the package were not installed: import fails
        import tasks
        from litequeue.base import tracing
        print(tasks.ok(2).id, tracing.active(), tracing.traceparent())
    """).stdout.split()
    assert missing[1:] == ["False", "None"]
    assert project.query("SELECT trace FROM lq_job") == [(None,), (None,)]
    project.cli("run-consumer", "tasks", "--burst", "-w", "1", timeout=120)
    assert project.statuses() == {"succeeded": 2}
