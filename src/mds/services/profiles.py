"""Company profiles: refresh market caps from the routed vendors, read them point in time.

A refresh asks the ``profile`` route (FMP's ``/stable/profile``, Finnhub's ``profile2``, the
sim in the demo; failover is the router's) for each symbol whose newest stored profile is
older than ``PROFILE_MAX_AGE_DAYS``, oldest first, so a run cut short by a vendor's daily cap
picks up where it stopped next time. Each profile is stored learned now, with the provider
that answered. A symbol every vendor fails on is reported with its error; the others go on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, cast

from mds.config import Settings
from mds.domain.clock import Clock
from mds.domain.models import Capability
from mds.domain.profile import CompanyProfile
from mds.errors import NoData, NoProviderAvailable, ProviderError
from mds.providers.base import ProfileProvider, Provider
from mds.routing.router import Router
from mds.storage.base import ProfileStore, UniverseStore

if TYPE_CHECKING:
    from mds.observability.metrics import Metrics

__all__ = ["ProfileRefresh", "ProfileService"]

#: Errors kept in a report's counters (the per-symbol results keep them all).
ERRORS_KEPT = 20
_NEVER = datetime.min.replace(tzinfo=UTC)


class ProfileServiceStore(ProfileStore, UniverseStore, Protocol):
    """What the service reads and writes: profiles, and the universe a default refresh covers."""


@dataclass
class ProfileRefresh:
    """One refresh: per symbol the provider and market cap stored, or the error; and the
    symbols skipped because their profile was fresh."""

    symbols: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped_fresh: int = 0

    @property
    def failed(self) -> list[str]:
        return [s for s, v in self.symbols.items() if "error" in v]

    def counters(self) -> dict[str, Any]:
        stored = [v for v in self.symbols.values() if "error" not in v]
        out: dict[str, Any] = {
            "asked": len(self.symbols),
            "stored": len(stored),
            "failed": len(self.failed),
            "skipped_fresh": self.skipped_fresh,
            "providers": dict(Counter(v["provider"] for v in stored)),
        }
        if self.failed:
            out["errors"] = {s: self.symbols[s]["error"] for s in self.failed[:ERRORS_KEPT]}
        return out


class ProfileService:
    def __init__(
        self,
        *,
        store: ProfileServiceStore,
        router: Router,
        clock: Clock,
        settings: Settings,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.router = router
        self.clock = clock
        self.settings = settings
        self.metrics = metrics

    async def refresh(
        self, symbols: Sequence[str] | None = None, *, max_age_days: float | None = None
    ) -> ProfileRefresh:
        """Fetch and store the profile of each of ``symbols`` (default: the active universe)
        whose stored one is older than ``max_age_days`` (default PROFILE_MAX_AGE_DAYS; 0
        refreshes all), oldest first."""
        if symbols is None:
            names = [e.symbol for e in await self.store.universe()]
        else:
            names = list(dict.fromkeys(s.upper() for s in symbols))
        age = self.settings.PROFILE_MAX_AGE_DAYS if max_age_days is None else max_age_days
        now = self.clock.now()
        stored = await self.store.profiles(names)
        learned = {s: (p.as_of or _NEVER) for s, p in stored.items()}
        due = [s for s in names if age == 0 or now - learned.get(s, _NEVER) >= timedelta(days=age)]
        due.sort(key=lambda s: learned.get(s, _NEVER))
        report = ProfileRefresh(skipped_fresh=len(names) - len(due))
        for symbol in due:
            report.symbols[symbol] = await self._refresh_one(symbol)
        return report

    async def _refresh_one(self, symbol: str) -> dict[str, Any]:
        try:
            routed = await self.router.call(Capability.PROFILE, lambda p: _fetch(p, symbol))
        except (ProviderError, NoProviderAvailable) as exc:
            outcome = "unknown" if isinstance(exc, NoData) else "failed"
            self._count(outcome)
            text = f"{exc.kind}: {exc.message}" if isinstance(exc, ProviderError) else str(exc)
            return {"error": text[:300]}
        profile = routed.value
        await self.store.write_profiles([profile], as_of=self.clock.now())
        self._count("stored")
        return {"provider": profile.provider, "market_cap": profile.market_cap}

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.profile_refresh_total.labels(outcome=outcome).inc()

    async def latest(
        self, symbols: Sequence[str], *, as_of: datetime | None = None
    ) -> dict[str, CompanyProfile]:
        """Per symbol, the newest profile MDS knew at ``as_of`` (now when None)."""
        return await self.store.profiles([s.upper() for s in symbols], as_of=as_of)

    async def history(self, symbol: str, *, limit: int = 100) -> list[CompanyProfile]:
        return await self.store.profile_history(symbol.upper(), limit=limit)


async def _fetch(provider: Provider, symbol: str) -> CompanyProfile:
    # The router calls only providers that declare Capability.PROFILE, which implement it
    # (and check what they return: an unfit profile is their BadPayload, counted against them).
    return await cast(ProfileProvider, provider).fetch_profile(symbol)
