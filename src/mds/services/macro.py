"""Macro factors: refresh from FRED (every vintage), a snapshot, and point-in-time history.

A refresh asks the routed macro provider for every vintage of each factor's recent
observations (the whole ``MACRO_HISTORY_DAYS`` the first time) and stores each vintage
once; the store keeps them all, so ``history(as_of=D)`` answers with the values as they
were known on D. ``term_spread_10y2y`` is derived on read from DGS10 and DGS2, each read
at the same ``as_of``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from typing import Any, cast

from mds.config import Settings
from mds.domain.clock import Clock
from mds.domain.macro import MacroObservation, MacroRow
from mds.domain.models import Capability
from mds.errors import NotFound, ProviderError
from mds.providers.base import MacroProvider, Provider
from mds.routing.router import Router
from mds.storage.base import MacroStore

#: Derived factors: key → (minuend, subtrahend), both FRED series in percent.
DERIVED: dict[str, tuple[str, str]] = {"term_spread_10y2y": ("DGS10", "DGS2")}
#: Calendar days of already-stored dates asked again on each refresh: vendors revise recent
#: values (ALFRED shows each revision as a new vintage), rarely older ones.
REVISION_WINDOW_DAYS = 45
#: Observations back for the snapshot's changes.
CHANGE_LAGS = (1, 5, 20)
#: The z-score's look-back, calendar days.
ZSCORE_DAYS = 365


@dataclass
class RefreshReport:
    """What one refresh did, per factor: rows fetched and new, or the error."""

    factors: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return [k for k, v in self.factors.items() if "error" in v]

    def counters(self) -> dict[str, Any]:
        return {
            "factors": len(self.factors),
            "failed": len(self.failed),
            "fetched": sum(v.get("fetched", 0) for v in self.factors.values()),
            "new_rows": sum(v.get("new_rows", 0) for v in self.factors.values()),
        }


class MacroService:
    def __init__(self, *, store: MacroStore, router: Router, clock: Clock, settings: Settings) -> None:
        self.store = store
        self.router = router
        self.clock = clock
        self.settings = settings

    # -- names ---------------------------------------------------------------------------
    def known(self) -> list[str]:
        """The configured factors, then the derived ones whose inputs are configured."""
        keys = list(self.settings.MACRO_FACTORS)
        keys += [k for k, parts in DERIVED.items() if all(p in keys for p in parts)]
        return keys

    async def require(self, factor_key: str) -> str:
        """The factor's canonical key; NotFound when it is neither configured, derived nor stored."""
        if factor_key in DERIVED:
            return factor_key
        key = factor_key.upper()
        if key in self.settings.MACRO_FACTORS or key in await self.store.macro_factor_keys():
            return key
        raise NotFound("factor", factor_key)

    # -- refresh -------------------------------------------------------------------------
    async def refresh(self, factors: Sequence[str] | None = None) -> RefreshReport:
        """Fetch and store every vintage of each factor's recent observations.

        A factor that fails is reported with its error and the others go on.
        """
        report = RefreshReport()
        today = self.clock.now().date()
        stored = set(await self.store.macro_factor_keys())
        for key in factors or self.settings.MACRO_FACTORS:
            key = key.upper()
            start = today - timedelta(days=self.settings.MACRO_HISTORY_DAYS)
            if key in stored:
                # Again from a little before the newest stored date: revisions land there.
                kept = await self.store.macro_history(key, start=start)
                if kept:
                    start = max(start, min(kept[-1].date, today) - timedelta(days=REVISION_WINDOW_DAYS))
            try:
                routed = await self.router.call(
                    Capability.MACRO, partial(_fetch, series=key, start=start, end=today)
                )
            except ProviderError as exc:
                report.factors[key] = {"error": f"{exc.kind}: {exc.message}"[:300]}
                continue
            now = self.clock.now()
            rows = [_row(key, o, now) for o in routed.value]
            new = await self.store.write_macro_rows(rows)
            report.factors[key] = {
                "fetched": len(rows),
                "new_rows": new,
                "provider": routed.provider,
                "since": start.isoformat(),
            }
        return report

    # -- reads ---------------------------------------------------------------------------
    async def history(
        self,
        factor_key: str,
        *,
        start: date | None = None,
        end: date | None = None,
        as_of: date | None = None,
    ) -> list[MacroRow]:
        """The factor's values dated ``start..end`` as known on ``as_of`` (now when None)."""
        key = await self.require(factor_key)
        if key not in DERIVED:
            return await self.store.macro_history(key, start=start, end=end, as_of=as_of)
        a, b = DERIVED[key]
        left = await self.store.macro_history(a, start=start, end=end, as_of=as_of)
        right = {r.date: r for r in await self.store.macro_history(b, start=start, end=end, as_of=as_of)}
        out = []
        for r in left:
            other = right.get(r.date)
            if other is None:
                continue
            value = None if r.value is None or other.value is None else round(r.value - other.value, 6)
            out.append(
                MacroRow(
                    factor_key=key,
                    date=r.date,
                    value=value,
                    # Known once both inputs were: the later of the two vintages.
                    realtime_start=max(r.realtime_start, other.realtime_start),
                    as_of=max(r.as_of, other.as_of),
                    source=r.source if r.source == other.source else f"{r.source}+{other.source}",
                )
            )
        return out

    async def snapshot(self) -> dict[str, Any]:
        """Per factor: the latest value and its date, changes over 1/5/20 observations and a
        one-year z-score (population of the last 365 days' observations)."""
        today = self.clock.now().date()
        out: dict[str, Any] = {}
        for key in self.known():
            rows = await self.history(key, start=today - timedelta(days=ZSCORE_DAYS + 60))
            out[key] = factor_summary(key, rows, today)
        return {"as_of": self.clock.now().isoformat(), "factors": out}

    async def latest_value(self, factor_key: str, *, within_days: int = 14) -> MacroRow | None:
        """The newest non-missing value dated within ``within_days``, or None."""
        today = self.clock.now().date()
        rows = await self.store.macro_history(factor_key, start=today - timedelta(days=within_days))
        known = [r for r in rows if r.value is not None]
        return known[-1] if known else None


def factor_summary(key: str, rows: Sequence[MacroRow], today: date) -> dict[str, Any]:
    """The snapshot entry of one factor from its rows (oldest first, missing values kept)."""
    values = [r for r in rows if r.value is not None and not math.isnan(r.value)]
    if not values:
        return {"factor_key": key, "value": None, "date": None, "reason": "no values stored yet"}
    last = values[-1]
    assert last.value is not None
    changes: dict[str, float | None] = {}
    for lag in CHANGE_LAGS:
        prior = values[-1 - lag].value if len(values) > lag else None
        changes[f"change_{lag}"] = None if prior is None else round(last.value - prior, 6)
    year = [cast(float, r.value) for r in values if r.date > today - timedelta(days=ZSCORE_DAYS)]
    z = None
    if len(year) >= 20:
        sd = statistics.pstdev(year)
        z = None if sd == 0 else round((last.value - statistics.fmean(year)) / sd, 4)
    return {
        "factor_key": key,
        "value": last.value,
        "date": last.date.isoformat(),
        "realtime_start": last.realtime_start.isoformat(),
        "source": last.source,
        **changes,
        "zscore_1y": z,
        "observations_1y": len(year),
    }


async def _fetch(provider: Provider, *, series: str, start: date, end: date) -> list[MacroObservation]:
    # The router calls only providers that declare Capability.MACRO, which implement it.
    return await cast(MacroProvider, provider).fetch_macro_series(series, start=start, end=end, vintages=True)


def _row(key: str, o: MacroObservation, now: Any) -> MacroRow:
    return MacroRow(
        factor_key=key,
        date=o.date,
        value=o.value,
        realtime_start=o.realtime_start,
        as_of=now,
        source=o.provider,
    )
