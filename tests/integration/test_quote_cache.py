"""The quote cache keeps a quote for CACHE_TTL_QUOTES_L1_SEC, the setting, not a constant."""

from __future__ import annotations

from mds.cache import InMemoryCache
from mds.constants import quote_cache_key
from mds.domain.jobs import QuotesFetchJob
from mds.domain.models import Tier
from mds.ingest.worker import Worker


async def test_a_fetched_quote_stays_cached_for_the_configured_ttl(make_pipeline) -> None:  # type: ignore[no-untyped-def]
    p = await make_pipeline({"CACHE_TTL_QUOTES_L1_SEC": "7"})
    cache = InMemoryCache(p.clock)
    worker = Worker(
        name="quotes",
        queue=p.live,
        ingestor=p.collector.ingestor,
        backfiller=p.collector.backfiller,
        store=p.store,
        router=p.router,
        settings=p.settings,
        clock=p.clock,
        metrics=p.metrics,
        tiers=p.collector.tiers,
        cache=cache,
    )
    await p.live.put(QuotesFetchJob(job_id="q1", symbols=["AAPL"], priority=Tier.T0))
    delivery = await p.live.get(timeout=1)
    assert delivery is not None
    await worker.process(delivery)

    cached = await cache.get(quote_cache_key("AAPL"))
    assert cached is not None and cached["provider"].startswith("sim")
    p.clock.advance(6.9)
    assert await cache.get(quote_cache_key("AAPL")) is not None
    p.clock.advance(0.2)
    assert await cache.get(quote_cache_key("AAPL")) is None, "a quote outlived CACHE_TTL_QUOTES_L1_SEC"
