"""Which provider names exist, and building the ones the policies ask for.

Sim providers are built only when a policy names them, so synthetic data can never
stand in silently for a real vendor.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import cast

from mds.calendar import MarketCalendar
from mds.config import Settings
from mds.domain.clock import Clock
from mds.domain.models import Capability
from mds.providers.base import Provider
from mds.providers.http import HttpProvider
from mds.providers.ratelimit import RateLimiter
from mds.providers.sim.actions import sim_actions_from_env
from mds.providers.sim.faults import SimFaults
from mds.providers.sim.market import SimMarket, parse_no_trade
from mds.providers.sim.provider import SimProvider

#: Each sim instance reads its fault settings under its own prefix.
SIM_PREFIXES = {"sim": "SIM_", "sim_backup": "SIM_BACKUP_"}

#: Vendor adapters, imported only when a policy names them (keeps start-up light).
VENDORS = {
    "yahoo": "mds.providers.yahoo:YahooProvider",
    "stooq": "mds.providers.stooq:StooqProvider",
    "finnhub": "mds.providers.finnhub:FinnhubProvider",
    "alphavantage": "mds.providers.alphavantage:AlphaVantageProvider",
    "polygon": "mds.providers.polygon:PolygonProvider",
    "fmp": "mds.providers.fmp:FmpProvider",
    "twelvedata": "mds.providers.twelvedata:TwelveDataProvider",
    "alpaca": "mds.providers.alpaca:AlpacaProvider",
    "tiingo": "mds.providers.tiingo:TiingoProvider",
    "fred": "mds.providers.fred:FredProvider",
}


def vendor_class(name: str) -> type[HttpProvider]:
    module, _, cls = VENDORS[name].partition(":")
    return cast(type[HttpProvider], getattr(importlib.import_module(module), cls))


def build_vendor(name: str, settings: Settings, calendar: MarketCalendar, limiter: RateLimiter) -> Provider:
    """The adapter of vendor ``name`` over ``settings`` (its key, base URL and rate limit)."""
    return vendor_class(name)(settings=settings, calendar=calendar, limiter=limiter)


def vendor_settings(name: str) -> tuple[str, ...]:
    """The settings an adapter of vendor ``name`` reads once, when it is built: its keys,
    ``<NAME>_BASE_URL``, ``<NAME>_RATE_PER_MIN``, and the HTTP client's timeout."""
    cls = vendor_class(name)
    upper = name.upper()
    own = [f"{upper}_BASE_URL", f"{upper}_RATE_PER_MIN"]
    return (*cls.key_settings, *(s for s in own if s in Settings.model_fields), "PROVIDER_TIMEOUT_SEC")


def adapters_to_rebuild(old: Settings, new: Settings, built: Iterable[str]) -> list[str]:
    """Of the vendor adapters ``built``, those whose own settings differ between ``old`` and
    ``new`` (sims are not rebuilt: their faults come from the environment, read at start)."""
    return sorted(
        name
        for name in built
        if name in VENDORS
        and any(getattr(old, s, None) != getattr(new, s, None) for s in vendor_settings(name))
    )


def policy_names(settings: Settings) -> list[str]:
    seen: list[str] = []
    for cap in Capability:
        for name in settings.policy(cap):
            if name not in seen:
                seen.append(name)
    return seen


def build_providers(
    settings: Settings,
    clock: Clock,
    calendar: MarketCalendar,
    environ: Mapping[str, str],
    *,
    limiter: RateLimiter | None = None,
) -> dict[str, Provider]:
    """Providers for every name in the policies that this build can serve.

    Vendors without their keys are built too: the router sees them as unconfigured and
    skips them, and /stats/providers lists them as such.
    """
    names = policy_names(settings)
    out: dict[str, Provider] = {}
    # One limiter for every vendor: its storage (memory or Redis) holds each vendor's budget.
    limiter = limiter or RateLimiter(
        settings.RATE_LIMIT_STORAGE_URI, live_reserved_share=settings.LIVE_RESERVED_RATE_SHARE
    )
    for name in names:
        if name in VENDORS:
            out[name] = build_vendor(name, settings, calendar, limiter)
    sims = [n for n in names if n in SIM_PREFIXES]
    if sims:
        # One ground truth for every sim instance; SIM_SEED decides it.
        seed = SimFaults.from_env(environ, prefix="SIM_").seed
        no_trade = parse_no_trade(environ.get("SIM_NO_TRADE", ""))
        actions = sim_actions_from_env(environ)  # SIM_SPLITS, SIM_DIVIDENDS
        market = SimMarket(seed=seed, calendar=calendar, no_trade=no_trade or None, actions=actions or None)
        for name in sims:
            faults = SimFaults.from_env(environ, prefix=SIM_PREFIXES[name])
            out[name] = SimProvider(
                name,
                market,
                clock,
                faults,
                respect_limit=True,
                live_reserved_share=settings.LIVE_RESERVED_RATE_SHARE,
            )
    return out
