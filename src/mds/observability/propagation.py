"""A job carries the trace context of whoever queued it (W3C ``traceparent``).

The queues stamp a job as it is put (:func:`stamp`); the worker that takes it opens its
job span as a child of that context (:func:`job_span`), so a request and the jobs it
queued show as one trace, across processes when the queue is Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from mds.domain.jobs import BaseJob

J = TypeVar("J", bound=BaseJob)

_W3C = TraceContextTextMapPropagator()


def stamp(job: J) -> J:
    """``job`` carrying the current span's context; unchanged when there is no span or
    it carries one already (a retried job keeps the trace of the request that queued it)."""
    if job.traceparent is not None or not trace.get_current_span().get_span_context().is_valid:
        return job
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return job.model_copy(
        update={"traceparent": carrier.get("traceparent"), "tracestate": carrier.get("tracestate")}
    )


def job_context(job: BaseJob) -> Context | None:
    """The context a job was queued in, or None (then its span starts a new trace)."""
    if job.traceparent is None:
        return None
    carrier = {"traceparent": job.traceparent}
    if job.tracestate:
        carrier["tracestate"] = job.tracestate
    return _W3C.extract(carrier)


@contextmanager
def job_span(tracer: Tracer, job: BaseJob) -> Iterator[Span]:
    """The span of one job's processing, a child of the context it was queued in."""
    job_type = str(getattr(job, "type", type(job).__name__))
    with tracer.start_as_current_span(
        f"job {job_type}",
        context=job_context(job),
        kind=SpanKind.CONSUMER,
        attributes={"mds.job.id": job.job_id, "mds.job.type": job_type, "mds.job.attempts": job.attempts},
    ) as span:
        yield span
