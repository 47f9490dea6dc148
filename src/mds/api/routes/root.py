"""Service info, health and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from mds import __version__
from mds.api.deps import RuntimeDep
from mds.errors import StorageError
from mds.serialize import iso

router = APIRouter(tags=["service"])


@router.get("/")
async def root(runtime: RuntimeDep) -> dict[str, object]:
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


@router.get("/health")
async def health(runtime: RuntimeDep) -> JSONResponse:
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
    }
    return JSONResponse(body, status_code=200 if checks["store"] == "ok" else 503)


@router.get("/metrics")
async def metrics(runtime: RuntimeDep) -> Response:
    if runtime.collector is not None:
        b = runtime.collector.backfiller
        runtime.metrics.backfill_queue_depth.set(b.queued())
        runtime.metrics.backfill_oldest_age_seconds.set(b.oldest_age_seconds())
    return Response(runtime.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
