"""Fixtures on a ManualClock, no sockets: an ingest pipeline (sim providers → router →
SQLite) and the HTTP API in-process."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from mds.access.admin import issue_key
from mds.access.keys import Role
from mds.api.app import create_app
from mds.cache import InMemoryCache
from mds.calendar import MarketCalendar
from mds.config import Settings, load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Interval, Tier
from mds.ingest.collector import Collector
from mds.ingest.dispatch import Dispatcher
from mds.ingest.worker import Worker
from mds.observability.metrics import Metrics
from mds.ops.catalog import TaskContext
from mds.providers.registry import build_providers
from mds.providers.sim.market import ground_truth
from mds.queue.memory import InMemoryJobQueue
from mds.routing.router import Router
from mds.runtime import Runtime, new_analysis, open_runtime
from mds.services.coverage import CoverageService
from mds.services.indexes import IndexRefresher
from mds.services.market import MarketService
from mds.services.tracked import TrackedService
from mds.storage.sqlite import SqliteStore
from tests.helpers import SIM_ENV

CAL = MarketCalendar()


@dataclass
class Pipeline:
    settings: Settings
    clock: ManualClock
    store: SqliteStore
    router: Router
    metrics: Metrics
    collector: Collector
    worker: Worker
    live: InMemoryJobQueue
    backfill: dict[Tier, InMemoryJobQueue]

    async def drain(self, queue: InMemoryJobQueue, *, max_jobs: int = 10_000) -> int:
        """Process jobs until the queue stays empty (retries come back after short delays)."""
        done = 0
        while done < max_jobs:
            d = await queue.get(timeout=0.3)
            if d is None:
                if await queue.inflight() == 0:
                    return done
                continue
            await self.worker.process(d)
            done += 1
        raise AssertionError("queue did not drain")

    def task_context(self, indexes: IndexRefresher | None = None) -> TaskContext:
        """The catalog tasks' context over this pipeline's parts (index lists from ``indexes``)."""
        cache = InMemoryCache(self.clock)
        tracked = TrackedService(store=self.store, calendar=CAL, clock=self.clock, settings=self.settings)
        market = MarketService(
            store=self.store, calendar=CAL, clock=self.clock, cache=cache, metrics=self.metrics
        )
        return TaskContext(
            store=self.store,
            calendar=CAL,
            clock=self.clock,
            settings=self.settings,
            router=self.router,
            backfiller=self.collector.backfiller,
            indexes=indexes
            or IndexRefresher(
                store=self.store, sources=[], clock=self.clock, settings=self.settings, metrics=self.metrics
            ),
            tracked=tracked,
            coverage=CoverageService(
                store=self.store,
                calendar=CAL,
                clock=self.clock,
                cache=cache,
                metrics=self.metrics,
                tracked=partial(tracked.tracked_set, with_new=False),
                settings=self.settings,
            ),
            analysis=new_analysis(self.store, CAL, self.clock, market, self.settings),
            metrics=self.metrics,
        )

    async def drain_backfills(self) -> int:
        """Dispatch backfills through the real Dispatcher until none is active."""
        dispatcher = Dispatcher(self.collector.backfiller, self.worker.process, self.settings, self.clock)
        task = asyncio.get_running_loop().create_task(dispatcher.run())
        try:
            await asyncio.wait_for(self.collector.backfiller.wait_idle(), timeout=30)
            return 0
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def make_pipeline(tmp_path):  # type: ignore[no-untyped-def]
    opened: list[Pipeline] = []

    async def make(
        env: dict[str, str] | None = None,
        *,
        now: datetime = datetime(2025, 10, 8, 15, 0, tzinfo=UTC),
        tiers: dict[str, Tier] | None = None,
    ) -> Pipeline:
        environ = {
            "POLICY_BARS_1M": "sim,sim_backup",
            "POLICY_EOD": "sim,sim_backup",
            "POLICY_QUOTES_L1": "sim,sim_backup",
            "POLICY_OPTIONS_CHAIN": "sim",
            "POLICY_BARS_5M": "sim,sim_backup",
            "INDEX_SOURCES": "",
            "BACKFILL_RETRY_BASE_SECONDS": "0.01",
            "BACKFILL_LOOKBACK_DAYS_1M": "1",
            "BACKFILL_LOOKBACK_DAYS_1D": "30",
            **(env or {}),
        }
        settings = load_settings(environ)
        clock = ManualClock(now)
        store = SqliteStore(str(tmp_path / f"p{len(opened)}.db"))
        await store.open()
        metrics = Metrics()
        router = Router(build_providers(settings, clock, CAL, environ), settings, clock, metrics)
        live = InMemoryJobQueue()
        backfill = {t: InMemoryJobQueue() for t in Tier}
        collector = Collector(
            settings=settings,
            store=store,
            router=router,
            calendar=CAL,
            clock=clock,
            metrics=metrics,
            live_queue=live,
            backfill_queues=backfill,
        )
        collector.tiers.update(tiers or {"AAPL": Tier.T0, "JPM": Tier.T1})
        worker = Worker(
            name="test",
            queue=live,
            ingestor=collector.ingestor,
            backfiller=collector.backfiller,
            store=store,
            router=router,
            settings=settings,
            clock=clock,
            metrics=metrics,
            tiers=collector.tiers,
        )
        p = Pipeline(settings, clock, store, router, metrics, collector, worker, live, backfill)
        opened.append(p)
        return p

    yield make
    for p in opened:
        await p.live.close()
        for q in p.backfill.values():
            await q.close()
        await p.store.close()


# The HTTP API in-process over a SQLite runtime on a ManualClock at API_NOW, holding AAPL's
# 1m bars from API_OPEN to API_NOW and 40 days of daily bars, all learned at API_NOW.
API_NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)
API_OPEN = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
API_ENV = dict(SIM_ENV)


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    """The demo runtime on the sim: SQLite under ``tmp_path``, a ManualClock at API_NOW, nothing
    collecting (tests drive it). A test module that needs another runtime defines its own ``rt``."""
    env = {**API_ENV, "DATABASE_URL": f"sqlite:///{tmp_path}/mds.db"}
    async with open_runtime(
        load_settings(env), clock=ManualClock(API_NOW), demo=True, collect=False, environ=env
    ) as runtime:
        yield runtime


@pytest.fixture
async def api(rt: Runtime) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    # 1m bars for AAPL from the open to 15:00, learned at 15:00.
    await rt.store.write_bars(ground_truth("AAPL", Interval.M1, API_OPEN, API_NOW), as_of=API_NOW)
    await rt.store.write_bars(
        ground_truth("AAPL", Interval.D1, API_NOW - timedelta(days=40), API_OPEN), as_of=API_NOW
    )
    async with asgi_client(rt) as client:
        yield client, rt


@asynccontextmanager
async def served_on_loopback(
    app: Any, *, send_buffer: int | None = None, **config: Any
) -> AsyncIterator[int]:
    """Serve ``app`` with uvicorn in this event loop (no lifespan); yields the port.

    ``send_buffer``: SO_SNDBUF of every accepted socket (set on the listener, which they
    inherit; it also stops the kernel growing it), so a client that stops reading fills it soon.
    """
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer is not None:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", **config))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    try:
        yield listener.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        listener.close()


@asynccontextmanager
async def asgi_client(
    rt: Runtime, *, role: Role | None = Role.ADMIN, base_url: str = "http://mds"
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the API in-process, over the runtime ``rt`` (not reopened).

    It sends a fresh key of ``role`` (admin by default, so every route answers); None sends
    none, and the client then keeps cookies like a browser (the admin console's session).
    """
    headers = {}
    if role is not None:
        key, _ = await issue_key(
            rt.store, f"test-{role.value}-{secrets.token_hex(4)}", role, now=rt.clock.now()
        )
        headers["X-API-Key"] = key

    @asynccontextmanager
    async def same_runtime() -> AsyncIterator[Runtime]:
        yield rt

    app = create_app(same_runtime)
    app.state.runtime = rt
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers) as client:
        yield client


def ok(r: httpx.Response) -> Any:
    """The JSON body of a 200 answer (the test fails with the body otherwise)."""
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    """The problem+json body of an answer with ``status``."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    return body


def manual(rt: Runtime) -> ManualClock:
    """The runtime's clock, which the test drives."""
    assert isinstance(rt.clock, ManualClock)
    return rt.clock
