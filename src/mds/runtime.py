"""Build every long-lived part of a running MDS from settings, and tear it down again.

``open_runtime`` is what `mds serve`, the API lifespan and integration tests use; it is
the one place where concrete implementations are chosen for the protocols.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from mds.cache import Cache, InMemoryCache
from mds.calendar import MarketCalendar
from mds.config import Settings
from mds.domain.clock import Clock, SystemClock
from mds.domain.models import Tier
from mds.ingest.collector import Collector
from mds.ingest.universe import default_universe, demo_universe
from mds.observability.metrics import Metrics
from mds.ops.reload import effective_environ
from mds.providers.base import Provider
from mds.providers.registry import build_providers
from mds.queue.base import JobQueue
from mds.queue.memory import InMemoryJobQueue
from mds.routing.router import Router
from mds.services.market import MarketService
from mds.storage.base import Store
from mds.storage.factory import open_store
from mds.stream.bus import Bus, InMemoryBus

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    calendar: MarketCalendar
    store: Store
    providers: dict[str, Provider]
    router: Router
    metrics: Metrics
    cache: Cache
    bus: Bus
    live_queue: JobQueue
    backfill_queues: dict[Tier, JobQueue]
    market: MarketService
    demo: bool
    started_at: datetime
    collector: Collector | None = None
    environ: Mapping[str, str] = field(default_factory=dict)
    env_file: Path | None = None
    env_defaults: Mapping[str, str] = field(default_factory=dict)
    policy_version: str = "initial"

    def current_environ(self) -> dict[str, str]:
        """The environment settings would be read from now (the env file is re-read)."""
        return effective_environ(self.environ, self.env_file, self.env_defaults)

    def apply_settings(self, settings: Settings) -> None:
        """Swap in validated settings everywhere they are read at run time."""
        self.settings = settings
        self.router.update_settings(settings)
        if self.collector is not None:
            self.collector.update_settings(settings)


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    demo: bool = False,
    collect: bool = True,
    environ: Mapping[str, str] | None = None,
    metrics: Metrics | None = None,
    env_file: Path | None = None,
    env_defaults: Mapping[str, str] | None = None,
) -> AsyncIterator[Runtime]:
    """Open every part; ``environ`` is the process environment (without the env file)."""
    clock = clock or SystemClock()
    environ = dict(environ or {})
    env_defaults = dict(env_defaults or {})
    metrics = metrics or Metrics()
    calendar = MarketCalendar(settings.MARKET_CALENDAR)
    store = open_store(settings.DATABASE_URL)
    await store.open()
    providers: dict[str, Provider] = {}
    cache = InMemoryCache(clock)
    bus = InMemoryBus()
    live_queue = InMemoryJobQueue()
    backfill_queues: dict[Tier, JobQueue] = {t: InMemoryJobQueue() for t in Tier}
    collector: Collector | None = None
    try:
        universe = demo_universe() if demo else default_universe(settings)
        digest = zlib.crc32(",".join(f"{e.symbol}:{e.tier.value}" for e in universe).encode())
        tag = f"{'demo' if demo else 'universe'}-{len(universe)}-{digest:08x}"
        await store.upsert_universe(
            universe,
            version_tag=tag,
            source_meta={"source": "demo" if demo else settings.UNIVERSE_FILE or "built-in"},
        )
        providers = build_providers(
            settings, clock, calendar, effective_environ(environ, env_file, env_defaults)
        )
        router = Router(providers, settings, clock, metrics)
        market = MarketService(store=store, calendar=calendar, clock=clock, cache=cache)
        if collect:
            collector = Collector(
                settings=settings,
                store=store,
                router=router,
                calendar=calendar,
                clock=clock,
                metrics=metrics,
                live_queue=live_queue,
                backfill_queues=backfill_queues,
                cache=cache,
                bus=bus,
            )
            await collector.start()
        yield Runtime(
            settings=settings,
            clock=clock,
            calendar=calendar,
            store=store,
            providers=providers,
            router=router,
            metrics=metrics,
            cache=cache,
            bus=bus,
            live_queue=live_queue,
            backfill_queues=backfill_queues,
            market=market,
            demo=demo,
            started_at=clock.now(),
            collector=collector,
            environ=environ,
            env_file=env_file,
            env_defaults=env_defaults,
        )
    finally:
        if collector is not None:
            await collector.stop()
        for p in providers.values():
            await p.aclose()
        await live_queue.close()
        for q in backfill_queues.values():
            await q.close()
        await bus.close()
        await cache.close()
        await store.close()
