"""Tracing: settings choose the tracer, jobs carry their trace, requests get named spans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracer, SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from mds.api.tracing import RequestSpans
from mds.config import load_settings
from mds.domain.jobs import BackfillJob, BarsFetchJob, TimeWindow, parse_job
from mds.domain.models import Tier
from mds.observability.propagation import job_span, stamp
from mds.observability.tracing import Tracing, instrument, setup_tracing
from mds.queue.memory import InMemoryJobQueue

T0 = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
WINDOW = TimeWindow(start=T0, end=T0 + timedelta(hours=1))


@pytest.fixture
def recorded() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    return Tracing.with_processors("mds-test", [SimpleSpanProcessor(exporter)]), exporter


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    return next(s for s in spans if s.name == name)


# -- settings -------------------------------------------------------------------------


def test_off_by_default_is_the_no_op_tracer() -> None:
    tracing = setup_tracing(load_settings({}))
    assert not tracing.enabled
    assert isinstance(tracing.tracer, NoOpTracer)


def test_enabled_without_an_endpoint_records_nothing() -> None:
    # A span nobody receives is pure cost: without an exporter there is no tracer to pay for.
    tracing = setup_tracing(load_settings({"TRACING_ENABLED": "true"}))
    assert not tracing.enabled
    assert isinstance(tracing.tracer, NoOpTracer)


def test_tracing_enabled_false_keeps_tracing_off_despite_an_endpoint() -> None:
    settings = {"TRACING_ENABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    assert not setup_tracing(load_settings(settings)).enabled


def test_an_endpoint_alone_turns_spans_on_and_exports_them_batched() -> None:
    tracing = setup_tracing(
        load_settings(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9/",
                "OTEL_SERVICE_NAME": "mds-a",
                "TRACING_READ_SAMPLE_RATIO": "0.25",
            }
        )
    )
    try:
        assert tracing.provider is not None
        assert tracing.provider.resource.attributes["service.name"] == "mds-a"
        assert tracing.read_sample_ratio == 0.25
        (processor,) = tracing.provider._active_span_processor._span_processors
        assert isinstance(processor, BatchSpanProcessor)
        exporter = processor._batch_processor._exporter
        assert getattr(exporter, "_endpoint") == "http://127.0.0.1:9/v1/traces"  # noqa: B009 - private
    finally:
        tracing.shutdown()


# -- jobs carry their trace -------------------------------------------------------------


def test_trace_context_round_trips_through_a_job_payload(
    recorded: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = recorded
    with tracing.tracer.start_as_current_span("request") as request:
        job = stamp(BackfillJob(symbol="AAPL", time_window=WINDOW))
    wire = job.model_dump_json()
    with job_span(tracing.tracer, parse_job(wire)):
        pass
    done = by_name(exporter.get_finished_spans(), "job backfill")
    assert done.context.trace_id == request.get_span_context().trace_id
    assert done.parent is not None and done.parent.span_id == request.get_span_context().span_id
    assert done.kind is SpanKind.CONSUMER
    assert done.attributes == {"mds.job.id": job.job_id, "mds.job.type": "backfill", "mds.job.attempts": 0}


def test_a_job_queued_outside_any_span_starts_its_own_trace(
    recorded: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = recorded
    job = BackfillJob(symbol="AAPL", time_window=WINDOW)
    assert stamp(job) is job and job.traceparent is None
    with job_span(tracing.tracer, job):
        pass
    assert exporter.get_finished_spans()[0].parent is None


def test_a_retried_job_keeps_the_trace_that_queued_it(recorded: tuple[Tracing, InMemorySpanExporter]) -> None:
    tracing, _ = recorded
    with tracing.tracer.start_as_current_span("request"):
        first = stamp(BackfillJob(symbol="AAPL", time_window=WINDOW))
    with tracing.tracer.start_as_current_span("job"):
        again = stamp(first.model_copy(update={"attempts": 1}))
    assert again.traceparent == first.traceparent


async def test_the_in_process_queue_stamps_what_it_is_given(
    recorded: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, _ = recorded
    queue = InMemoryJobQueue()
    live = BarsFetchJob(symbols=["AAPL"], time_window=WINDOW, priority=Tier.T0)
    backfill = BackfillJob(symbol="AAPL", time_window=WINDOW, priority=Tier.T1)  # held as JSON
    with tracing.tracer.start_as_current_span("request") as request:
        await queue.put(live)
        await queue.put_many([backfill])
    trace_id = format(request.get_span_context().trace_id, "032x")
    for _ in range(2):
        delivery = await queue.get(timeout=0)
        assert delivery is not None and delivery.job.traceparent is not None
        assert delivery.job.traceparent.split("-")[1] == trace_id
    await queue.close()


def test_a_malformed_traceparent_from_an_outside_producer_is_ignored(
    recorded: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = recorded
    job = parse_job(BackfillJob(symbol="AAPL", time_window=WINDOW, traceparent="garbage").model_dump_json())
    with job_span(tracing.tracer, job):
        pass
    assert exporter.get_finished_spans()[0].parent is None


# -- instrumented objects ----------------------------------------------------------------


class _Reads:
    async def read(self, n: int) -> int:
        return n * 2


async def test_instrument_wraps_calls_in_child_spans_and_keeps_the_type(
    recorded: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = recorded
    obj = _Reads()
    instrument(obj, tracing, "store", ["read"], {"db.system.name": "sqlite"})
    assert isinstance(obj, _Reads)
    assert await obj.read(1) == 2  # outside any span: no span of its own (no orphan traces)
    assert exporter.get_finished_spans() == ()
    with tracing.tracer.start_as_current_span("request") as request:
        assert await obj.read(2) == 4
    span, _ = exporter.get_finished_spans()
    assert span.name == "store.read" and span.attributes == {"db.system.name": "sqlite"}
    assert span.parent is not None and span.parent.span_id == request.get_span_context().span_id


def test_instrument_leaves_the_object_alone_when_tracing_is_off() -> None:
    obj = _Reads()
    instrument(obj, Tracing.disabled(), "store", ["read"])
    assert "read" not in vars(obj)


# -- request spans ------------------------------------------------------------------------


def _app(tracing: Tracing, reads: _Reads | None = None) -> Starlette:
    async def item(request: Request) -> PlainTextResponse:
        if reads is not None:
            await reads.read(1)
        return PlainTextResponse("x", status_code=201 if request.path_params["id"] == "new" else 200)

    async def boom(request: Request) -> PlainTextResponse:
        raise RuntimeError("boom")

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[
            Route("/items/{id}", item, methods=["GET", "POST"]),
            Route("/boom", boom),
            Route("/health", health),
        ],
    )
    app.add_middleware(RequestSpans)
    app.state.runtime = SimpleNamespace(tracing=tracing)
    return app


async def test_a_request_span_is_named_by_its_route_and_carries_the_status(
    recorded: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = recorded
    transport = httpx.ASGITransport(app=_app(tracing), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/items/new")).status_code == 201
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/boom")).status_code == 500
        assert (await client.get("/nowhere")).status_code == 404
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["GET /items/{id}", "GET /boom", "GET"]  # /health is not traced
    item, boom, missing = spans
    assert item.kind is SpanKind.SERVER
    assert item.attributes is not None and item.attributes["http.response.status_code"] == 201
    assert item.attributes["http.route"] == "/items/{id}" and item.attributes["url.path"] == "/items/new"
    assert boom.attributes is not None and boom.attributes["http.response.status_code"] == 500
    assert not boom.status.is_ok
    assert missing.attributes is not None and missing.attributes["http.response.status_code"] == 404


async def test_a_request_with_a_traceparent_continues_the_callers_trace(
    recorded: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = recorded
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    transport = httpx.ASGITransport(app=_app(tracing))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/items/1", headers={"traceparent": caller})
    (span,) = exporter.get_finished_spans()
    assert format(span.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert span.parent is not None and format(span.parent.span_id, "016x") == "b7ad6b7169203331"


async def test_with_tracing_off_requests_pass_straight_through() -> None:
    transport = httpx.ASGITransport(app=_app(Tracing.disabled()))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/items/1")).status_code == 200


async def test_reads_are_sampled_and_everything_else_is_traced() -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing.with_processors("mds-test", [SimpleSpanProcessor(exporter)], read_sample_ratio=0.0)
    reads = _Reads()
    instrument(reads, tracing, "store", ["read"])
    sampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    transport = httpx.ASGITransport(app=_app(tracing, reads))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/items/1")).status_code == 200  # ratio 0: no span, nor the store's
        assert (await client.get("/items/2", headers={"traceparent": unsampled})).status_code == 200
        assert exporter.get_finished_spans() == ()
        await client.get("/items/3", headers={"traceparent": sampled})  # the caller asked for it
        await client.post("/items/new")  # not a read: always traced
    names = [s.name for s in exporter.get_finished_spans()]
    assert names == ["store.read", "GET /items/{id}", "store.read", "POST /items/{id}"]


async def test_a_read_sample_ratio_of_one_traces_every_read(
    recorded: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = recorded
    transport = httpx.ASGITransport(app=_app(tracing))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for n in range(20):
            await client.get(f"/items/{n}")
    assert len(exporter.get_finished_spans()) == 20
