"""Provider health, data quality and cadence policy."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from mds.api.deps import RuntimeDep
from mds.api.params import SYMBOL_PATTERN
from mds.api.problems import problem_responses
from mds.domain.models import Capability, Tier
from mds.errors import NotFound
from mds.reconcile.service import pooled, reconcile_settings
from mds.routing.breaker import BreakerState
from mds.serialize import iso

router = APIRouter(prefix="/stats", tags=["stats"], responses=problem_responses(500, 503))
#: Per-provider resources (seed 003: GET /providers/{name}/health-history); same guard as /stats.
providers_router = APIRouter(prefix="/providers", tags=["stats"], responses=problem_responses(500, 503))


class ProviderStats(BaseModel):
    provider: str = Field(description="Provider name")
    configured: bool = Field(description="Whether its credentials are set (unconfigured ones are skipped)")
    capabilities: list[Capability] = Field(description="What it can be asked for")
    state: BreakerState = Field(description="Circuit breaker state")
    health_score: float = Field(
        description="H = quality x (0.45 breaker + 0.25 latency + 0.20 error + 0.10 completeness)"
    )
    latency_p95_ms: float | None = Field(description="95th percentile latency, ms (null before any call)")
    error_ewma: float = Field(description="Exponentially weighted error rate, 0 to 1")
    completeness: float = Field(description="Share of expected bars delivered, 0 to 1")
    quality: float = Field(description="Data-quality score from reconciliation, 0 to 1 (1 until scored)")
    consecutive_failures: int = Field(description="Failures since the last success")
    paused_until: str | None = Field(description="Rate-limit pause end (ISO-8601), if paused")
    not_entitled: list[Capability] = Field(description="Capabilities the vendor plan refused")
    h_history: list[tuple[str, float]] = Field(description="Recent (time, health score) pairs")


class HealthComponents(BaseModel):
    breaker: float = Field(description="1.0 closed, 0.5 half-open, 0.0 open (weight 0.45)")
    latency: float = Field(description="1 - min(p95 / RECENT_LATENCY_CAP_MS, 1) (weight 0.25)")
    error: float = Field(description="1 - the error EWMA (weight 0.20)")
    completeness: float = Field(description="The completeness EWMA (weight 0.10)")
    quality: float = Field(description="Reconciliation's data-quality score; multiplies the sum")


class HealthSampleOut(BaseModel):
    at: str = Field(description="When the outcome behind the sample was recorded (service clock, ISO-8601)")
    health_score: float = Field(description="H after that outcome")
    state: BreakerState = Field(description="Breaker state then")
    components: HealthComponents = Field(description="The factors H was computed from")
    latency_p95_ms: float | None = Field(description="95th percentile latency then, ms (null: no sample)")
    consecutive_failures: int = Field(description="Failures since the last success, then")


class BreakerTransition(BaseModel):
    at: str = Field(description="When the breaker changed state (service clock, ISO-8601)")
    from_: BreakerState = Field(alias="from", description="State before")
    to: BreakerState = Field(description="State after")
    reason: str = Field(description="The outcome or cooldown behind it, and the figures then")


class HealthHistoryOut(BaseModel):
    provider: str = Field(description="Provider name")
    state: BreakerState = Field(description="Breaker state now")
    health_score: float = Field(description="H now")
    samples: list[HealthSampleOut] = Field(description="The last 60 samples of H, oldest first")
    transitions: list[BreakerTransition] = Field(
        description="The last 60 breaker state changes, oldest first"
    )


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


@providers_router.get(
    "/{name}/health-history",
    response_model=HealthHistoryOut,
    response_model_by_alias=True,
    responses=problem_responses(404, 422),
    operation_id="getProviderHealthHistory",
)
async def health_history(
    name: Annotated[str, Path(pattern=r"^[a-z_]{2,32}$", description="Provider name, e.g. polygon")],
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """The provider's last 60 health-score samples with their components, and its breaker
    state changes with their reasons (the figures behind ``h_history`` in /stats/providers)."""
    try:
        return runtime.router.health_history(name)
    except KeyError:
        raise NotFound("provider", name) from None


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


class ProviderQuality(BaseModel):
    provider: str = Field(description="Provider name")
    score: float = Field(
        description="Pooled over each symbol's newest check: (compared - faults) / compared, 0 to 1"
    )
    symbols: int = Field(description="Symbols it has been compared on")
    compared: int = Field(description="Bar times compared, over those checks")
    faults: int = Field(description="Of those, the ones a third provider blamed on it")
    routed_quality: float | None = Field(
        description="The quality factor the router applies to its health score now (null: not routed)"
    )
    health_score: float | None = Field(description="Its health score H now (null: not routed)")
    state: BreakerState | None = Field(description="Its breaker state (null: not routed)")


class PairQuality(BaseModel):
    provider: str = Field(description="Provider name")
    symbol: str = Field(description="Ticker")
    interval: str = Field(description="Bar interval compared")
    score: float = Field(description="(compared - faults) / compared in the newest check, 0 to 1")
    compared: int = Field(description="Bar times compared")
    faults: int = Field(description="Bar times a third provider blamed on this one")
    unresolved: int = Field(description="Disagreements no third provider could settle (blamed on nobody)")
    against: str = Field(description="The provider(s) it was compared with")
    start: str = Field(description="Start of the range compared (ISO-8601, inclusive)")
    end: str = Field(description="End of the range compared (ISO-8601, exclusive)")
    checked_at: str = Field(description="When the check ran")
    flagged: bool = Field(description="Whether the score is below RECONCILE_DISAGREEMENT_THRESHOLD")


class DisagreementOut(BaseModel):
    checked_at: str = Field(description="When the check ran")
    provider: str = Field(description="The stored bar's provider")
    other_provider: str = Field(description="The provider it was compared with")
    symbol: str = Field(description="Ticker")
    interval: str = Field(description="Bar interval")
    ts: str = Field(description="The bar's open time (ISO-8601)")
    kind: str = Field(
        description="value (both hold it), missing (the store lacks it), extra (only the store has it)"
    )
    field: str = Field(description="open, high, low, close, volume, or bar (a missing or extra bar)")
    stored_value: float | None = Field(description="The stored value (null for a whole bar)")
    other_value: float | None = Field(description="The other provider's value (null for a whole bar)")
    diff: float | None = Field(description="Ticks (0.01) for a price, percent for volume")
    blamed: str | None = Field(description="The provider a third one sided against (null: undecided)")
    note: str = Field(description="How it was settled, or why it was not")


class QualityOut(BaseModel):
    threshold: float = Field(
        description="RECONCILE_DISAGREEMENT_THRESHOLD: pairs scored below it are flagged"
    )
    providers: list[ProviderQuality] = Field(description="Per provider, by name")
    pairs: list[PairQuality] = Field(description="Per provider x symbol x interval, the newest check")
    disagreements: list[DisagreementOut] = Field(
        description="Newest first; never acted on (stored bars are not changed by reconciliation)"
    )


@router.get("/quality", response_model=QualityOut, operation_id="getDataQuality")
async def quality(
    runtime: RuntimeDep,
    provider: Annotated[
        str | None, Query(pattern=r"^[a-z_]{2,32}$", description="Only this provider (either side)")
    ] = None,
    symbol: Annotated[str | None, Query(pattern=SYMBOL_PATTERN, description="Only this ticker")] = None,
    limit: Annotated[int, Query(ge=0, le=1000, description="Most disagreements listed")] = 100,
) -> dict[str, Any]:
    """Cross-vendor data quality: per provider and per provider x symbol scores from the
    newest reconciliation checks, and the newest disagreements for an operator."""
    store, router = runtime.store, runtime.router
    sym = symbol.upper() if symbol else None
    scores = await store.quality_scores(provider=provider, symbol=sym)
    rows = await store.quality_disagreements(provider=provider, symbol=sym, limit=limit)
    threshold = reconcile_settings(runtime.settings).disagreement_threshold
    routed = {p["provider"]: p for p in router.snapshot()}
    providers = []
    for name, score in pooled(scores).items():
        mine = [s for s in scores if s.provider == name]
        live = routed.get(name)
        providers.append(
            {
                "provider": name,
                "score": round(score, 6),
                "symbols": len({s.symbol for s in mine}),
                "compared": sum(s.compared for s in mine),
                "faults": sum(s.faults for s in mine),
                "routed_quality": None if live is None else round(router.quality(name), 6),
                "health_score": None if live is None else live["health_score"],
                "state": None if live is None else live["state"],
            }
        )
    return {
        "threshold": threshold,
        "providers": providers,
        "pairs": [
            {
                "provider": s.provider,
                "symbol": s.symbol,
                "interval": s.interval.value,
                "score": round(s.score, 6),
                "compared": s.compared,
                "faults": s.faults,
                "unresolved": s.unresolved,
                "against": s.against,
                "start": iso(s.start),
                "end": iso(s.end),
                "checked_at": iso(s.checked_at),
                "flagged": s.score < threshold,
            }
            for s in scores
        ],
        "disagreements": [
            {
                "checked_at": iso(d.checked_at),
                "provider": d.provider,
                "other_provider": d.other_provider,
                "symbol": d.symbol,
                "interval": d.interval.value,
                "ts": iso(d.ts),
                "kind": d.kind.value,
                "field": d.field,
                "stored_value": d.stored_value,
                "other_value": d.other_value,
                "diff": d.diff,
                "blamed": d.blamed,
                "note": d.note,
            }
            for d in rows
        ],
    }
