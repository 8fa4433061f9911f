"""OpenTelemetry traces of jobs: a ``send <queue>`` span for each enqueue and a
``process <queue>`` span for each attempt, in the same trace, following OpenTelemetry's
messaging semantic conventions.

litequeue never sets a tracer provider: it uses the one the application set
(``opentelemetry.trace.set_tracer_provider``). While none is set, or the
``opentelemetry-api`` package is missing, or the application never imported it, every
function here returns at once and nothing is imported: ``opentelemetry`` is only looked
at once something in the process has imported ``opentelemetry.trace``.

The enqueue's span context travels with the job as a W3C ``traceparent`` string
(``lq_job.trace``, written with the job, read back by its claim), so the attempt's span
is its child wherever it runs: a thread worker, a worker process, another host.
"""

from __future__ import annotations

import sys
from typing import Any

SYSTEM = "litequeue"

_cache: tuple[Any, Any] | None = None  # (provider, tracer)


def _api() -> Any:
    """``opentelemetry.trace`` if the application has imported it, else None."""
    return sys.modules.get("opentelemetry.trace")


def _tracer() -> Any:
    """The application's tracer, or None when no tracer provider is set."""
    global _cache
    api = _api()
    if api is None:
        return None
    try:
        provider = api.get_tracer_provider()
        if isinstance(provider, (api.ProxyTracerProvider, api.NoOpTracerProvider)):
            return None
        if _cache is None or _cache[0] is not provider:
            _cache = (provider, provider.get_tracer("litequeue"))
        return _cache[1]
    except Exception:  # noqa: BLE001 - an odd or half-imported API: no traces, never a failed job
        return None


def active() -> bool:
    """Whether spans are being made (a tracer provider is set)."""
    return _tracer() is not None


class Span:
    """One open span of litequeue's, current in this thread until :meth:`end`."""

    def __init__(self, span: Any, token: Any) -> None:
        self.span = span
        self.token = token

    def outcome(self, outcome: str, failed: bool, exc: BaseException | None, error: str | None) -> None:
        """How the attempt ended; a failed one sets the status to ERROR and records the exception."""
        from opentelemetry.trace import Status, StatusCode

        self.span.set_attribute("litequeue.outcome", outcome)
        if failed:
            if exc is not None:
                self.span.record_exception(exc)
            self.span.set_status(Status(StatusCode.ERROR, error or outcome))

    def fail(self, exc: BaseException) -> None:
        self.outcome("error", True, exc, f"{type(exc).__name__}: {exc}")

    def end(self) -> None:
        from opentelemetry import context

        try:
            context.detach(self.token)
        finally:
            self.span.end()


def _attributes(operation: str, queue: str, job_id: str, task: str) -> dict[str, Any]:
    return {"messaging.system": SYSTEM, "messaging.operation.type": operation,
            "messaging.operation.name": operation, "messaging.destination.name": queue,
            "messaging.message.id": job_id, "litequeue.task": task}


def _start(tracer: Any, name: str, kind: Any, attributes: dict[str, Any], parent: Any = None) -> Span:
    from opentelemetry import context, trace

    span = tracer.start_span(name, context=parent, kind=kind, attributes=attributes)
    return Span(span, context.attach(trace.set_span_in_context(span)))


def send(queue: str, job_id: str, task: str) -> Span | None:
    """The PRODUCER span of an enqueue, a child of the current span (None: not tracing)."""
    tracer = _tracer()
    if tracer is None:
        return None
    from opentelemetry.trace import SpanKind

    return _start(tracer, f"send {queue}", SpanKind.PRODUCER, _attributes("send", queue, job_id, task))


def process(queue: str, job_id: str, task: str, attempt: int, traceparent: str | None) -> Span | None:
    """The CONSUMER span of one attempt, a child of the enqueue's span ``traceparent``
    (None: not tracing)."""
    tracer = _tracer()
    if tracer is None:
        return None
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = TraceContextTextMapPropagator().extract({"traceparent": traceparent}) if traceparent else None
    attributes = _attributes("process", queue, job_id, task)
    attributes["litequeue.attempt"] = attempt
    return _start(tracer, f"process {queue}", SpanKind.CONSUMER, attributes, parent)


def traceparent() -> str | None:
    """The W3C traceparent of the current span, to store with a job enqueued now; None
    when not tracing or no span is current."""
    if _tracer() is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


def flush(timeout_ms: int = 5000) -> None:
    """Export the spans the provider still holds (a worker process ends with ``os._exit``,
    which runs no atexit hook)."""
    tracer = _tracer()
    if tracer is None or _cache is None:
        return
    force = getattr(_cache[0], "force_flush", None)
    if force is not None:
        try:
            force(timeout_ms)
        except Exception:  # noqa: BLE001 - an exporter's trouble never stops a worker
            pass
