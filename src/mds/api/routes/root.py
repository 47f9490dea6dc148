"""Service info, health and Prometheus metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from mds import __version__
from mds.api.deps import RuntimeDep
from mds.api.problems import problem_responses
from mds.errors import QueueError, StorageError
from mds.ingest.backlog import publish_backlog, read_backlog
from mds.routing.breaker import BreakerState
from mds.serialize import iso

log = logging.getLogger(__name__)
router = APIRouter(tags=["service"], responses=problem_responses(500))
#: /metrics alone: guarded by a read key when AUTH_METRICS_REQUIRED (see mds.api.app).
metrics_router = APIRouter(tags=["service"], responses=problem_responses(500))
_PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


class RootOut(BaseModel):
    service: str = Field(description="Always 'mds'")
    version: str = Field(description="MDS version")
    mode: str = Field(description="'demo (sim data)' or 'live'")
    now: str = Field(description="The service clock's time (UTC ISO-8601); a demo clock may run fast")
    endpoints: list[str] = Field(description="The main endpoints, for a human starting out")


class StoreInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    backend: str = Field(description="sqlite, postgresql, or unknown when the store cannot answer")
    timescaledb: bool | None = Field(default=None, description="Whether TimescaleDB hypertables are used")
    mode: str | None = Field(default=None, description="embedded (SQLite), plain or timescaledb (PostgreSQL)")
    rollups: str | None = Field(default=None, description="Where 5m/15m/1h bars are rolled up")
    server_version: str | None = Field(default=None, description="Database server version")


class EventLoopLag(BaseModel):
    lag_p99_ms: float = Field(description="99th percentile of how late the event loop woke, ms")
    lag_max_ms: float = Field(description="Worst lateness in the window, ms")
    window_s: float = Field(description="Window length, seconds")
    samples: int = Field(description="Samples in the window")


class TierLag(BaseModel):
    max_s: float = Field(description="Worst live lag of the tier's series, seconds")
    p95_s: float = Field(description="95th percentile live lag, seconds")
    symbols: int = Field(description="Series tracked")


class StreamHubState(BaseModel):
    status: str = Field(description="ok while the hub reads the bus, else stopped")
    clients: int = Field(description="Open WebSocket connections")
    symbols: int = Field(description="Symbols at least one client watches")
    bus_dropped: int = Field(description="Bus events the hub missed (refilled from the replay log)")
    slow_clients_closed: int = Field(description="Clients closed with 1013 for staying behind")


class ProcessVersionOut(BaseModel):
    process: str = Field(description="Process id (host-pid, or the worker's --name)")
    roles: list[str] = Field(description="What it runs: api, worker, scheduler")
    policy_version: str = Field(description="Version tag of the configuration it applied")
    seen_at: str = Field(description="Its last heartbeat (wall clock, UTC ISO-8601)")


class HealthOut(BaseModel):
    status: str = Field(description="ok, or degraded (the store or every provider is unusable)")
    checks: dict[str, str] = Field(description="Per check (store, providers): ok, or what is wrong")
    mode: str = Field(description="demo or live")
    store: StoreInfo = Field(description="The store backend and its mode")
    queue_backend: str = Field(description="memory or redis")
    roles: list[str] = Field(description="What this process runs: api, worker, scheduler")
    clock: str = Field(description="The service clock's time (UTC ISO-8601)")
    clock_speed: float = Field(description="Service clock speed (1.0 = real time)")
    startup_backfill_queued: bool = Field(
        description="Whether the start-up gap check has queued its backfills"
    )
    providers: dict[str, BreakerState] = Field(description="Circuit-breaker state per provider")
    event_loop: EventLoopLag | None = Field(description="Event-loop lateness (real ms), if measured here")
    live_lag: dict[str, TierLag] = Field(
        description="Live lag per tier as last published (empty if not tracked here)"
    )
    stream: StreamHubState | None = Field(description="The WebSocket hub, where this process serves one")
    policy_version: str = Field(description="Version tag of the configuration this process runs")
    processes: list[ProcessVersionOut] = Field(
        description="Every live process (by heartbeat): its roles and configuration version"
    )
    policy_versions: dict[str, list[str]] = Field(
        description="Per role (api, worker, scheduler), the configuration versions its processes run;"
        " more than one means a reload has not reached them all"
    )


@router.get("/", response_model=RootOut, operation_id="getServiceInfo")
async def root(runtime: RuntimeDep) -> dict[str, object]:
    """What this service is, its clock, and where to start."""
    return {
        "service": "mds",
        "version": __version__,
        "mode": "demo (sim data)" if runtime.demo else "live",
        "now": iso(runtime.clock.now()),
        "endpoints": [
            "/health",
            "/metrics",
            "/stats/providers",
            "/stats/cadence",
            "/ops/cursor/{symbol}/{interval}/{source}",
            "POST /ops/backfill",
            "POST /ops/validate",
            "/stocks/{symbol}/price",
            "/stocks/{symbol}/history?period=",
            "/stocks/{symbol}/intraday?interval=&start=&end=&as_of=",
            "POST /stocks/batch",
            "/docs",
        ],
    }


@router.get(
    "/health",
    response_model=HealthOut,
    operation_id="getHealth",
    responses={
        # A probe's answer, not a problem with the request: the same document, status 503.
        503: {"model": HealthOut, "description": "Degraded: the store cannot answer (same document)"}
    },
)
async def health(runtime: RuntimeDep) -> JSONResponse:
    """Liveness and readiness: 200 while the store answers, 503 (same body) when it does not."""
    checks: dict[str, str] = {}
    try:
        await runtime.store.ping()
        checks["store"] = "ok"
    except StorageError as exc:
        checks["store"] = f"error: {exc}"
    providers = runtime.router.snapshot()
    usable = [p["provider"] for p in providers if p["configured"] and p["state"] != "open"]
    checks["providers"] = f"{len(usable)} usable" if usable else "none usable"
    ok = checks["store"] == "ok" and bool(usable)
    try:
        backend = await runtime.store.backend_info()
    except StorageError:
        backend = {"backend": "unknown"}
    body = {
        "status": "ok" if ok else "degraded",
        "checks": checks,
        "mode": "demo" if runtime.demo else "live",
        "store": backend,
        "queue_backend": runtime.settings.QUEUE_BACKEND,
        "roles": sorted(runtime.roles),
        "clock": iso(runtime.clock.now()),
        "clock_speed": runtime.clock.speed,
        "startup_backfill_queued": bool(runtime.collector and runtime.collector.startup_done.is_set()),
        "providers": {p["provider"]: p["state"] for p in providers},
        # How late the asyncio loop wakes (real ms), apart from how far data trails the market.
        "event_loop": runtime.loop_lag.snapshot() if runtime.loop_lag is not None else None,
        # Per live tier, as last published (empty where this process does not track it).
        "live_lag": (runtime.live_lag.snapshot().get("tiers", {}) if runtime.live_lag is not None else {}),
        "stream": runtime.hub.state() if runtime.hub is not None else None,
        # Which configuration each process runs: a reload reaches them all (issue 18).
        "policy_version": runtime.policy_version,
        **(
            await runtime.config_sync.roll_call()
            if runtime.config_sync is not None
            else {"processes": [], "policy_versions": {}}
        ),
    }
    return JSONResponse(body, status_code=200 if checks["store"] == "ok" else 503)


@metrics_router.get(
    "/metrics",
    response_class=Response,
    operation_id="getMetrics",
    responses={
        200: {"content": {_PROMETHEUS: {"schema": {"type": "string"}}}, "description": "Prometheus text"}
    },
)
async def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus metrics in the text exposition format."""
    try:
        backlog = await read_backlog(runtime.backfill_queues, runtime.store, runtime.clock.now())
    except (QueueError, StorageError) as exc:
        # The other metrics still matter (and a failed scrape would read as "process down");
        # the backlog gauges keep their last reading.
        log.warning("metrics: backfill backlog unreadable: %s", exc)
    else:
        publish_backlog(runtime.metrics, backlog)
    return Response(runtime.metrics.render(), media_type=_PROMETHEUS)
