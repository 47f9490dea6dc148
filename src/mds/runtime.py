"""Build every long-lived part of a running MDS from settings, and tear it down again.

``open_runtime`` is what `mds serve`, the API lifespan and integration tests use; it is
the one place where concrete implementations are chosen for the protocols.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import zlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from mds.access.authenticator import Authenticator
from mds.analysis.service import AnalysisService
from mds.cache import Cache, InMemoryCache
from mds.calendar import MarketCalendar
from mds.config import Settings
from mds.constants import (
    config_processes_key,
    config_topic,
    config_version_key,
    scheduler_leader_key,
    task_queue_key,
)
from mds.corporate.adjust import Adjust
from mds.domain.clock import Clock, SystemClock
from mds.domain.models import Tier
from mds.domain.schedules import RunStatus
from mds.ingest.collector import Collector
from mds.ingest.live_lag import LiveLagTracker
from mds.ingest.universe import default_universe, demo_universe
from mds.observability.instrument import instrument_market, instrument_store
from mds.observability.loop_lag import LoopLagMonitor
from mds.observability.metrics import Metrics, publish_cadences
from mds.observability.tracing import Tracing, setup_tracing
from mds.ops.catalog import Catalog, TaskContext
from mds.ops.config_sync import PRESENCE_TTL_SECONDS, ConfigSync, MemoryPresence, Presence, RedisPresence
from mds.ops.hooks import RunHooks
from mds.ops.reload import RetiredAdapters, effective_environ, reload_here
from mds.ops.runs import Preflight, RunSubmitter, TaskRunner
from mds.ops.scheduler import Scheduler
from mds.providers.base import Provider
from mds.providers.ratelimit import RateLimiter
from mds.providers.registry import build_providers
from mds.queue.base import JobQueue
from mds.queue.memory import InMemoryJobQueue
from mds.queue.tasks import BandedQueue, TaskQueues
from mds.reconcile.service import pooled
from mds.reference.sources import ConstituentSource, constituent_sources
from mds.routing.router import Router
from mds.services.bar_cache import ResponseBytes
from mds.services.corporate_actions import CorporateActionsService
from mds.services.coverage import CoverageService
from mds.services.indexes import IndexRefresher
from mds.services.macro import MacroService
from mds.services.market import MarketService
from mds.services.options import OptionsService, StreamSnapshots, refresh_streamed
from mds.services.profiles import ProfileService
from mds.services.schedules import ScheduleService
from mds.services.stream_snapshot import Snapshots
from mds.services.tracked import TrackedService
from mds.storage.base import Store
from mds.storage.factory import analysis_store_for, open_store
from mds.stream import Bus, InMemoryBus, InMemoryStreamLog, StreamLog
from mds.stream.hub import Hub, HubLimits
from mds.stream.publisher import StreamPublisher

if TYPE_CHECKING:
    from redis.asyncio import Redis

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
    auth: Authenticator
    stream_log: StreamLog
    publisher: StreamPublisher
    tracked: TrackedService
    indexes: IndexRefresher
    coverage: CoverageService
    runs: TaskRunner
    schedules: ScheduleService
    task_queues: TaskQueues
    macro: MacroService
    options: OptionsService
    corporate_actions: CorporateActionsService
    profiles: ProfileService
    demo: bool
    started_at: datetime
    collector: Collector | None = None
    environ: Mapping[str, str] = field(default_factory=dict)
    env_file: Path | None = None
    env_defaults: Mapping[str, str] = field(default_factory=dict)
    policy_version: str = "initial"
    roles: frozenset[str] = frozenset({"api", "worker", "scheduler"})
    live_lag: LiveLagTracker | None = None
    loop_lag: LoopLagMonitor | None = None
    hub: Hub | None = None
    redis: Redis | None = None
    hooks: RunHooks | None = None
    #: The rate limiter every vendor adapter shares (a reload builds adapters over it).
    limiter: RateLimiter | None = None
    #: Adapters a reload replaced, closed once their calls had time to end.
    retired: RetiredAdapters = field(default_factory=RetiredAdapters)
    #: Announces this process's reloads, applies the others', publishes its version.
    config_sync: ConfigSync | None = None
    #: Built at start from TRACING_ENABLED / OTEL_EXPORTER_OTLP_ENDPOINT; a reload keeps it.
    tracing: Tracing = field(default_factory=Tracing.disabled)

    def current_environ(self) -> dict[str, str]:
        """The environment settings would be read from now (the env file is re-read)."""
        return effective_environ(self.environ, self.env_file, self.env_defaults)

    def apply_settings(self, settings: Settings) -> None:
        """Swap in validated settings everywhere they are read at run time."""
        self.settings = settings
        self.router.update_settings(settings)
        if self.collector is not None:
            self.collector.update_settings(settings)
        if self.live_lag is not None:
            self.live_lag.update_settings(settings)
        self.auth.configure(cache_seconds=settings.AUTH_CACHE_SEC, failure_limit=settings.AUTH_FAILURE_LIMIT)
        if self.hub is not None:
            self.hub.configure(hub_limits(settings))
        self.coverage.update_settings(settings)
        self.schedules.settings = settings
        self.macro.settings = settings
        self.corporate_actions.settings = settings
        self.profiles.settings = settings
        self.options.settings = settings
        self.runs.ctx.settings = settings  # tasks read their defaults (sessions, days) per run
        if self.hooks is not None:
            self.hooks.settings = settings
        publish_cadences(self.metrics, settings)


def analysis_service(runtime: Runtime) -> AnalysisService:
    """The analysis service over a runtime's store, calendar, clock and market service."""
    return new_analysis(runtime.store, runtime.calendar, runtime.clock, runtime.market, runtime.settings)


def new_analysis(
    store: Store, calendar: MarketCalendar, clock: Clock, market: MarketService, settings: Settings
) -> AnalysisService:
    return AnalysisService(
        store=store,
        analysis=analysis_store_for(store),
        calendar=calendar,
        clock=clock,
        market=market,
        ttl_sec=settings.ANALYSIS_CACHE_TTL_SEC,
        adjust=Adjust(settings.ANALYSIS_ADJUST),
    )


async def load_universe(store: Store, settings: Settings, *, demo: bool) -> None:
    """The universe at start: the demo's, UNIVERSE_FILE's, or what the store holds.

    Without UNIVERSE_FILE a store that already holds a universe (say, one `mds universe
    import` loaded) keeps it; only an empty store gets the built-in default. Tracked
    symbols (holdings, index members) stay active whatever a file leaves out.
    """
    if not demo and not settings.UNIVERSE_FILE and await store.universe():
        return
    entries = demo_universe() if demo else default_universe(settings)
    digest = zlib.crc32(",".join(f"{e.symbol}:{e.tier.value}" for e in entries).encode())
    source = "demo" if demo else settings.UNIVERSE_FILE or "built-in"
    keep = {h.symbol for h in await store.holdings()} | {m.symbol for m in await store.index_members()}
    await store.upsert_universe(
        entries,
        version_tag=f"{'demo' if demo else 'universe'}-{len(entries)}-{digest:08x}",
        source_meta={"source": source},
        source="csv" if settings.UNIVERSE_FILE and not demo else source,
        keep_active=keep,
    )


async def first_start(schedules: ScheduleService, settings: Settings, *, demo: bool) -> None:
    """On a store with no schedules: seed the catalog's, and where index lists can be had
    (the demo, or INDEX_SOURCES set) run the restore chain once now, so a new deployment
    builds its tracked set and coverage without waiting for tonight's schedules; likewise
    the macro refresh where macro series can be had (the demo's sim, or FRED_API_KEY), and
    the demo's corporate actions."""
    if not settings.SCHEDULER_CATALOG_SEED or await schedules.all():
        return
    seeded = await schedules.seed(by="catalog")
    log.info("seeded %d schedules from the task catalog", len(seeded))
    if demo or settings.INDEX_SOURCES:
        # The nightly 5m backfill is hours away too: this first run queues 5m history as well.
        await schedules.run_now("bootstrap_daily_coverage_tracked", by="catalog", kwargs={"with_5m": True})
    if demo or settings.FRED_API_KEY is not None:
        # Tonight's macro refresh is hours away: load the factors' history now.
        await schedules.run_now("refresh_macro_factors", by="catalog")
    if demo:
        # The weekday refresh is before tomorrow's open: learn the sim's splits and dividends now
        # (a real deployment waits for it rather than spend vendor budget on the whole universe).
        await schedules.run_now("refresh_corporate_actions", by="catalog")


def hub_limits(settings: Settings) -> HubLimits:
    return HubLimits(
        queue_max=settings.WS_CLIENT_QUEUE_MAX,
        slow_client_s=settings.WS_SLOW_CLIENT_SEC,
        subscribe_limit=settings.WS_SUBSCRIBE_LIMIT,
        max_symbols=settings.WS_MAX_SYMBOLS,
    )


async def _start_config_sync(runtime: Runtime, bus: Bus, presence: Presence, process: str) -> None:
    """Apply the reloads other processes announce; publish this process's version."""

    async def apply(version: str) -> None:
        await reload_here(runtime, version=version)

    runtime.config_sync = ConfigSync(
        bus=bus,
        presence=presence,
        topic=config_topic(runtime.settings.RLC_REDIS_JOBS_KEY),
        process=process,
        roles=runtime.roles,
        current=lambda: runtime.policy_version,
        apply=apply,
    )
    await runtime.config_sync.start()


ALL_ROLES = frozenset({"api", "worker", "scheduler"})
#: Clock seconds between re-reads of the store's cursors by the lag tracker when several
#: processes write (Redis queues); each pass is one cursor read per tracked series.
LIVE_LAG_REFRESH_SECONDS = 30.0


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    demo: bool = False,
    collect: bool = True,
    roles: frozenset[str] | None = None,
    environ: Mapping[str, str] | None = None,
    metrics: Metrics | None = None,
    env_file: Path | None = None,
    env_defaults: Mapping[str, str] | None = None,
    consumer: str | None = None,
) -> AsyncIterator[Runtime]:
    """Open every part; ``environ`` is the process environment (without the env file).

    ``roles`` says what this process does: ``api`` (serve HTTP), ``worker`` (consume live
    and backfill jobs), ``scheduler`` (sweeper, gap scans, SLO monitor; leader-elected on
    Redis). `mds serve` is all three; ``collect=False`` means API only.
    """
    roles = roles if roles is not None else (ALL_ROLES if collect else frozenset({"api"}))
    clock = clock or SystemClock()
    environ = dict(environ or {})
    env_defaults = dict(env_defaults or {})
    metrics = metrics or Metrics()
    calendar = MarketCalendar(settings.MARKET_CALENDAR)
    store = open_store(
        settings.DATABASE_URL,
        pool_min=settings.DB_POOL_MIN_SIZE,
        pool_max=settings.DB_POOL_MAX_SIZE,
        statement_timeout_ms=settings.DB_STATEMENT_TIMEOUT_MS,
        retry_max_seconds=settings.DB_RETRY_MAX_SECONDS,
        live_reserved_connections=settings.LIVE_RESERVED_DB_CONNECTIONS,
    )
    await store.open()
    tracing = setup_tracing(settings)
    instrument_store(store, tracing)  # before any part takes a bound method of it
    providers: dict[str, Provider] = {}
    sources: list[ConstituentSource] = []
    redis = None
    limiter = RateLimiter(
        settings.RATE_LIMIT_STORAGE_URI, live_reserved_share=settings.LIVE_RESERVED_RATE_SHARE
    )
    if settings.QUEUE_BACKEND == "redis":
        from redis.asyncio import Redis

        from mds.cache.redis import RedisCache
        from mds.queue.redis import RedisJobQueue
        from mds.stream.log_redis import RedisStreamLog
        from mds.stream.redis import RedisBus

        redis = Redis.from_url(settings.RLC_REDIS_URL, socket_timeout=10, socket_connect_timeout=5)
        name = consumer or f"{socket.gethostname()}-{os.getpid()}"
        cache: Cache = RedisCache(redis)
        bus: Bus = RedisBus(redis)
        stream_log: StreamLog = RedisStreamLog(
            redis, clock, max_messages=settings.WS_REPLAY_MAX_MESSAGES, ttl_sec=settings.WS_REPLAY_TTL_SEC
        )
        live_queue: JobQueue = RedisJobQueue(
            redis, settings.RLC_REDIS_JOBS_KEY, consumer=name, visibility_timeout=30.0
        )
        backfill_queues: dict[Tier, JobQueue] = {
            t: RedisJobQueue(
                redis,
                getattr(settings.RLC_REDIS_BACKFILL_KEYS, t.value),
                consumer=name,
                visibility_timeout=30.0,
            )
            for t in Tier
        }
        task_queues = TaskQueues.build(
            settings.TASK_QUEUES,
            lambda q: BandedQueue(
                {
                    t: RedisJobQueue(
                        redis,
                        task_queue_key(settings.RLC_REDIS_JOBS_KEY, q, t.value),
                        consumer=name,
                        visibility_timeout=30.0,
                    )
                    for t in Tier
                }
            ),
        )
    else:
        cache = InMemoryCache(clock)
        bus = InMemoryBus()
        stream_log = InMemoryStreamLog(clock, max_messages=settings.WS_REPLAY_MAX_MESSAGES)
        live_queue = InMemoryJobQueue()
        backfill_queues = {t: InMemoryJobQueue() for t in Tier}
        task_queues = TaskQueues.build(settings.TASK_QUEUES, lambda _: InMemoryJobQueue())
    collector: Collector | None = None
    hub: Hub | None = None
    # Every process publishes which configuration it runs (see mds.ops.config_sync).
    process = consumer or f"{socket.gethostname()}-{os.getpid()}"
    presence: Presence = (
        RedisPresence(
            redis,
            processes_key=config_processes_key(settings.RLC_REDIS_JOBS_KEY),
            version_key=config_version_key(settings.RLC_REDIS_JOBS_KEY),
            ttl=PRESENCE_TTL_SECONDS,
        )
        if redis is not None
        else MemoryPresence()
    )
    runtime: Runtime | None = None
    publisher = StreamPublisher(stream_log, bus, metrics)
    publish_cadences(metrics, settings)
    loop_lag = LoopLagMonitor(metrics)
    loop_lag.start()  # every process: a stalled API loop matters as much as a worker's
    live_lag: LiveLagTracker | None = None
    runner: TaskRunner | None = None
    streamed: asyncio.Task[None] | None = None
    try:
        await load_universe(store, settings, demo=demo)
        universe = await store.universe()
        providers = build_providers(
            settings, clock, calendar, effective_environ(environ, env_file, env_defaults), limiter=limiter
        )
        router = Router(providers, settings, clock, metrics, tracer=tracing.tracer)
        # Reconciliation's scores outlive a restart: a vendor found serving wrong prices
        # stays demoted until the next reconciliation says otherwise.
        for provider, score in pooled(await store.quality_scores()).items():
            if provider in providers:
                router.record_quality(provider, score)
        responses = (
            ResponseBytes(
                max_bytes=settings.BARS_RESPONSE_CACHE_MB * 1024 * 1024,
                ttl_seconds=settings.BARS_RESPONSE_CACHE_SEC,
            )
            if settings.BARS_RESPONSE_CACHE_MB > 0
            else None
        )
        market = MarketService(
            store=store, calendar=calendar, clock=clock, cache=cache, responses=responses, metrics=metrics
        )
        instrument_market(market, tracing)
        by_tier: dict[Tier, list[str]] = {t: [] for t in Tier}
        for e in universe:
            by_tier[e.tier].append(e.symbol)
        live_lag = LiveLagTracker(
            settings=settings,
            calendar=calendar,
            clock=clock,
            metrics=metrics,
            store=store,
            symbols_by_tier=by_tier,
            # Scaled out, other processes write too: re-read the store's cursors now and then.
            refresh_every=LIVE_LAG_REFRESH_SECONDS if redis is not None else None,
        )
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
            publisher=publisher,
            shared_queues=redis is not None,
            live_lag=live_lag,
            tracer=tracing.tracer,
        )
        sources = constituent_sources(settings, demo=demo)
        indexes = IndexRefresher(
            store=store, sources=sources, clock=clock, settings=settings, metrics=metrics, cache=cache
        )
        tracked = TrackedService(store=store, calendar=calendar, clock=clock, settings=settings, redis=redis)
        coverage = CoverageService(
            store=store,
            calendar=calendar,
            clock=clock,
            cache=cache,
            metrics=metrics,
            tracked=partial(tracked.tracked_set, with_new=False),
            settings=settings,
        )
        hooks = RunHooks(settings, metrics)
        macro = MacroService(store=store, router=router, clock=clock, settings=settings)
        corporate_actions = CorporateActionsService(
            store=store,
            router=router,
            clock=clock,
            calendar=calendar,
            settings=settings,
            generations=market.generations,
            metrics=metrics,
        )
        profiles = ProfileService(store=store, router=router, clock=clock, settings=settings, metrics=metrics)
        options = OptionsService(
            router=router,
            store=store,
            market=market,
            macro=macro,
            clock=clock,
            calendar=calendar,
            settings=settings,
            metrics=metrics,
            publisher=publisher,
        )
        context = TaskContext(
            store=store,
            calendar=calendar,
            clock=clock,
            settings=settings,
            router=router,
            backfiller=collector.backfiller,
            indexes=indexes,
            tracked=tracked,
            coverage=coverage,
            analysis=new_analysis(store, calendar, clock, market, settings),
            metrics=metrics,
            generations=market.generations,
            macro=macro,
            options=options,
            corporate_actions=corporate_actions,
            profiles=profiles,
        )
        catalog = Catalog()
        submitter = RunSubmitter(
            store=store, catalog=catalog, clock=clock, queues=task_queues, zone=calendar.zone
        )
        runner = TaskRunner(
            submitter=submitter,
            ctx=context,
            notifier=hooks,
            preflight=Preflight(context, redis=redis),
            observe=metrics.observe_task_run,
            tracer=tracing.tracer,
        )
        schedules = ScheduleService(
            store=store, catalog=catalog, submitter=submitter, clock=clock, settings=settings
        )
        collector.housekeeping.append(
            Scheduler(
                store=store,
                runner=runner,
                clock=clock,
                reload_seconds=settings.SCHEDULER_RELOAD_SEC,
                first_lead=partial(first_start, schedules, settings, demo=demo),
            ).run
        )
        leader = None
        if redis is not None and "scheduler" in roles:
            from mds.ops.leader import LeaderLock

            leader = LeaderLock(redis, scheduler_leader_key(settings.RLC_REDIS_JOBS_KEY))
        await collector.start(roles, leader=leader, restore=redis is None)
        if "worker" in roles:
            if redis is None:  # in-process queues died with the last process: queue its runs again
                for run in await store.job_runs(status=RunStatus.QUEUED, limit=10_000):
                    await submitter.enqueue(run)
            runner.start(settings.TASK_WORKERS)
        if roles & {"worker", "scheduler"}:
            live_lag.start()  # seeds from the store in the background, then publishes
        if "api" in roles:
            snapshots = StreamSnapshots(
                Snapshots(
                    store=store,
                    calendar=calendar,
                    clock=clock,
                    max_bars=settings.WS_REPLAY_MAX_BARS,
                    adjustments=market.adjustments,
                ),
                options,
                market,
            )
            hub = Hub(
                log=stream_log,
                bus=bus,
                snapshots=snapshots,
                metrics=metrics,
                limits=hub_limits(settings),
                known_symbol=snapshots.known,
            )
            await hub.start()
            streamed = asyncio.create_task(refresh_streamed(options, hub, clock), name="options-streamed")
        runtime = Runtime(
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
            stream_log=stream_log,
            publisher=publisher,
            tracked=tracked,
            indexes=indexes,
            coverage=coverage,
            runs=runner,
            schedules=schedules,
            hooks=hooks,
            task_queues=task_queues,
            macro=macro,
            options=options,
            corporate_actions=corporate_actions,
            profiles=profiles,
            redis=redis,
            hub=hub,
            auth=Authenticator(
                store,
                metrics,
                cache_seconds=settings.AUTH_CACHE_SEC,
                failure_limit=settings.AUTH_FAILURE_LIMIT,
            ),
            demo=demo,
            started_at=clock.now(),
            collector=collector,
            environ=environ,
            env_file=env_file,
            env_defaults=env_defaults,
            roles=roles,
            live_lag=live_lag,
            loop_lag=loop_lag,
            tracing=tracing,
            limiter=limiter,
        )
        await _start_config_sync(runtime, bus, presence, process)
        yield runtime
    finally:
        if runtime is not None:
            if runtime.config_sync is not None:
                await runtime.config_sync.stop()
            await runtime.retired.aclose()
        if streamed is not None:
            streamed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await streamed
        if runner is not None:
            await runner.stop()
        if hub is not None:
            await hub.stop()
        if live_lag is not None:
            await live_lag.stop()
        await loop_lag.stop()
        if collector is not None:
            await collector.stop()
        for p in providers.values():
            await p.aclose()
        for source in sources:
            await source.aclose()
        await limiter.aclose()
        await live_queue.close()
        for q in backfill_queues.values():
            await q.close()
        await task_queues.close()
        await bus.close()
        await stream_log.close()
        await cache.close()
        if redis is not None:
            await redis.aclose()
        await store.close()
        # Last: spans of the shutdown itself are exported too. Off the loop, since it
        # waits for the exporter (at most its timeout when the collector is gone).
        await asyncio.to_thread(tracing.shutdown)
