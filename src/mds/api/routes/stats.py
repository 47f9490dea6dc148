"""Provider health and cadence policy."""

from __future__ import annotations

from fastapi import APIRouter

from mds.api.deps import RuntimeDep
from mds.domain.models import Capability, Tier

router = APIRouter(prefix="/stats", tags=["stats"])


@router.get("/providers")
async def providers(runtime: RuntimeDep) -> dict[str, object]:
    return {
        "providers": runtime.router.snapshot(),
        "policies": {c.value: runtime.router.order(c) for c in Capability},
        "configured_policies": {c.value: runtime.settings.policy(c) for c in Capability},
    }


@router.get("/cadence")
async def cadence(runtime: RuntimeDep) -> dict[str, object]:
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
