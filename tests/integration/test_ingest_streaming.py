"""Writing bars streams exactly what changed: new and revised recent 1m bars and their 5m buckets."""

from __future__ import annotations

from datetime import UTC, datetime

from mds.domain.models import Interval
from mds.ingest.streaming import BarStreamer
from mds.providers.sim.market import ground_truth
from mds.stream import InMemoryBus, InMemoryStreamLog
from mds.stream.publisher import StreamPublisher

NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)


async def _pipeline_with_stream(make_pipeline):  # type: ignore[no-untyped-def]
    p = await make_pipeline(now=NOW)
    log = InMemoryStreamLog(p.clock)
    publisher = StreamPublisher(log, InMemoryBus(), p.metrics)
    # The collector built its ingestor without a stream; give it one as runtime.py does.
    p.collector.ingestor.streamer = BarStreamer(
        publisher=publisher, store=p.store, calendar=p.collector.calendar, max_bars=120
    )
    return p, log


async def test_new_bars_stream_once_with_their_5m_buckets(make_pipeline) -> None:
    p, log = await _pipeline_with_stream(make_pipeline)
    start = datetime(2025, 10, 8, 14, 50, tzinfo=UTC)
    await p.collector.ingestor.ingest("AAPL", Interval.M1, start, NOW)
    replay = await log.since("AAPL", 0, (await log.head("AAPL"))[1])
    kinds = [(e.message["interval"], e.message["ts"]) for e in replay.entries]
    minutes = [ts for iv, ts in kinds if iv == "1m"]
    assert minutes == [f"2025-10-08T14:{m}:00Z" for m in range(50, 60)]
    assert [ts for iv, ts in kinds if iv == "5m"] == ["2025-10-08T14:50:00Z", "2025-10-08T14:55:00Z"]
    truth = ground_truth("AAPL", Interval.M5, start, NOW)
    rolled = [e.message for e in replay.entries if e.message["interval"] == "5m"]
    assert [(m["open"], m["high"], m["low"], m["close"], m["volume"]) for m in rolled] == [
        (t.open, t.high, t.low, t.close, t.volume) for t in truth
    ]
    assert all(m["status"] == "final" and m["provider"].startswith("sim") for m in rolled)
    assert all(
        e.message["type"] == "bar" and e.message["as_of"] == "2025-10-08T15:00:00Z" for e in replay.entries
    )
    assert [e.offset for e in replay.entries] == list(range(1, 13))

    # The same answer again changes nothing, so nothing is streamed.
    p.clock.advance(5)
    await p.collector.ingestor.ingest("AAPL", Interval.M1, start, NOW)
    assert (await log.head("AAPL"))[0] == 12


async def test_old_history_written_by_a_backfill_is_not_streamed(make_pipeline) -> None:
    p, log = await _pipeline_with_stream(make_pipeline)
    outcome = await p.collector.ingestor.ingest(
        "AAPL",
        Interval.M1,
        datetime(2025, 10, 7, 13, 30, tzinfo=UTC),
        datetime(2025, 10, 7, 15, 0, tzinfo=UTC),
    )
    assert outcome.inserted == 90
    assert (await log.head("AAPL"))[0] == 0
    # The last half hour of yesterday is within a snapshot's 120 bars of now (90 today): streamed.
    await p.collector.ingestor.ingest(
        "AAPL",
        Interval.M1,
        datetime(2025, 10, 7, 19, 50, tzinfo=UTC),
        datetime(2025, 10, 7, 20, 0, tzinfo=UTC),
    )
    replay = await log.since("AAPL", 0, (await log.head("AAPL"))[1])
    assert [e.message["ts"] for e in replay.entries if e.message["interval"] == "1m"] == [
        f"2025-10-07T19:{m}:00Z" for m in range(50, 60)
    ]
