"""Provider health and cadence policy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from mds.api.deps import RuntimeDep
from mds.api.problems import problem_responses
from mds.domain.models import Capability, Tier
from mds.routing.breaker import BreakerState

router = APIRouter(prefix="/stats", tags=["stats"], responses=problem_responses(500, 503))


class ProviderStats(BaseModel):
    provider: str = Field(description="Provider name")
    configured: bool = Field(description="Whether its credentials are set (unconfigured ones are skipped)")
    capabilities: list[Capability] = Field(description="What it can be asked for")
    state: BreakerState = Field(description="Circuit breaker state")
    health_score: float = Field(
        description="H = 0.45 breaker + 0.25 latency + 0.20 error + 0.10 completeness"
    )
    latency_p95_ms: float | None = Field(description="95th percentile latency, ms (null before any call)")
    error_ewma: float = Field(description="Exponentially weighted error rate, 0 to 1")
    completeness: float = Field(description="Share of expected bars delivered, 0 to 1")
    consecutive_failures: int = Field(description="Failures since the last success")
    paused_until: str | None = Field(description="Rate-limit pause end (ISO-8601), if paused")
    not_entitled: list[Capability] = Field(description="Capabilities the vendor plan refused")
    h_history: list[tuple[str, float]] = Field(description="Recent (time, health score) pairs")


class ProvidersOut(BaseModel):
    providers: list[ProviderStats] = Field(description="One entry per provider, by name")
    policies: dict[Capability, list[str]] = Field(
        description="Per capability, the providers in the order the router tries them now"
    )
    configured_policies: dict[Capability, list[str]] = Field(
        description="Per capability, the configured preference order"
    )


class TierCadence(BaseModel):
    symbols: int = Field(description="Active symbols in the tier")
    cadence: dict[str, int | None] = Field(
        description="Sweep cadence per capability (see units); null means not swept"
    )
    backfill_max_concurrency: int = Field(description="Backfill jobs of the tier run at once")
    backfill_max_queue: int = Field(description="Most queued backfill jobs of the tier")


class CadenceOut(BaseModel):
    tiers: dict[Tier, TierCadence] = Field(description="Per tier")
    tier_maxs: dict[str, int] = Field(description="Most symbols per tier (T0, T1; the rest are T2)")
    units: dict[str, str] = Field(description="Unit of each cadence: seconds or sessions")
    use_rlc: bool = Field(description="Whether an external rate-limit coordinator feeds the live queue")
    local_sweep_enabled: bool = Field(description="Whether this deployment sweeps on its own")


@router.get("/providers", response_model=ProvidersOut, operation_id="getProviderStats")
async def providers(runtime: RuntimeDep) -> dict[str, Any]:
    """Health, breaker state and statistics per provider, and the routing order per capability."""
    return {
        "providers": runtime.router.snapshot(),
        "policies": {c.value: runtime.router.order(c) for c in Capability},
        "configured_policies": {c.value: runtime.settings.policy(c) for c in Capability},
    }


@router.get("/cadence", response_model=CadenceOut, operation_id="getCadence")
async def cadence(runtime: RuntimeDep) -> dict[str, Any]:
    """Per tier: symbols, sweep cadences and backfill limits."""
    universe = await runtime.store.universe()
    counts = {t.value: sum(1 for e in universe if e.tier is t) for t in Tier}
    s = runtime.settings
    return {
        "tiers": {
            t.value: {
                "symbols": counts[t.value],
                "cadence": s.cadence(t).model_dump(),
                "backfill_max_concurrency": s.backfill_concurrency(t),
                "backfill_max_queue": s.backfill_max_queue(t),
            }
            for t in Tier
        },
        "tier_maxs": s.TIER_MAXS.model_dump(),
        "units": {"bars_1m": "seconds", "quotes_l1": "seconds", "eod": "sessions"},
        "use_rlc": s.USE_RLC,
        "local_sweep_enabled": s.LOCAL_SWEEP_ENABLED,
    }
