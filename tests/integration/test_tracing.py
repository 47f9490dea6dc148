"""Spans of a real runtime reach a loopback OTLP/HTTP collector: a read request down to the
store, and a queued backfill whose job span joins the trace of the request that queued it."""

from __future__ import annotations

from pathlib import Path

from mds.benchmarks.otlp_sink import OtlpSink, ReceivedSpan
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Interval, Tier
from mds.ingest.worker import Worker
from mds.providers.sim.market import ground_truth
from mds.runtime import open_runtime
from mds.serialize import iso
from tests.integration.conftest import API_ENV, API_NOW, API_OPEN, asgi_client, ok

SERVER, CONSUMER = 2, 5  # OTLP's SpanKind numbers


def ancestors(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[ReceivedSpan]:
    out = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        out.append(span)
    return out


async def test_request_store_and_queued_job_spans_reach_the_collector(tmp_path: Path) -> None:
    with OtlpSink() as sink:
        env = {
            **API_ENV,
            "DATABASE_URL": f"sqlite:///{tmp_path}/t.db",
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
            "OTEL_SERVICE_NAME": "mds-it",
            "TRACING_READ_SAMPLE_RATIO": "1",  # every read, so this one is
        }
        settings = load_settings(env)
        async with open_runtime(
            settings, clock=ManualClock(API_NOW), demo=True, collect=False, environ=env
        ) as rt:
            assert rt.tracing.enabled
            await rt.store.write_bars(ground_truth("AAPL", Interval.M1, API_OPEN, API_NOW), as_of=API_NOW)
            async with asgi_client(rt) as client:
                ok(
                    await client.get(
                        "/stocks/AAPL/intraday", params={"start": iso(API_OPEN), "end": iso(API_NOW)}
                    )
                )
                day_before = {"start": "2025-10-07T13:30:00Z", "end": "2025-10-07T14:30:00Z"}
                queued = await client.post(
                    "/ops/backfill", json={"symbol": "AAPL", "priority": "T0", **day_before}
                )
                assert queued.status_code == 202, queued.text
            delivery = await rt.backfill_queues[Tier.T0].get(timeout=5)
            assert delivery is not None
            assert rt.collector is not None
            worker = Worker(
                name="it",
                queue=rt.live_queue,
                ingestor=rt.collector.ingestor,
                backfiller=rt.collector.backfiller,
                store=rt.store,
                router=rt.router,
                settings=rt.settings,
                clock=rt.clock,
                metrics=rt.metrics,
                tiers=rt.collector.tiers,
                tracer=rt.tracing.tracer,
            )
            await worker.process(delivery)
        # Closing the runtime shut tracing down, which flushed the batch to the collector.

    by_id = {s.span_id: s for s in sink.spans}
    assert {s.service_name for s in sink.spans} == {"mds-it"}

    read = next(s for s in sink.spans if s.name == "GET /stocks/{symbol}/intraday")
    assert read.kind == SERVER and read.attributes["http.response.status_code"] == 200
    below_read = [s for s in sink.spans if read in ancestors(s, by_id)]
    assert any(s.name.startswith("market.") and s.parent_span_id == read.span_id for s in below_read)
    store_reads = [s for s in below_read if s.name.startswith("store.")]
    assert store_reads and all(s.attributes["db.system.name"] == "sqlite" for s in store_reads)
    assert any(by_id[s.parent_span_id].name.startswith("market.") for s in store_reads)

    post = next(s for s in sink.spans if s.name == "POST /ops/backfill")
    job = next(s for s in sink.spans if s.name == "job backfill")
    assert job.kind == CONSUMER and job.trace_id == post.trace_id
    assert post in ancestors(job, by_id)
    provider = next(s for s in sink.spans if s.name == "provider bars_1m")
    assert job in ancestors(provider, by_id)
    assert provider.attributes["mds.outcome"] == "success" and provider.attributes["mds.provider"] == "sim"
