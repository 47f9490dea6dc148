"""The tracked page's optional columns, read for the rows of one page only.

price: the market service's latest price (quote, else last 1m bar, else last daily bar);
ATR and stage: the cached technical snapshot (``recompute_indicators_universe`` fills the
cache; nothing is computed for a page view); market cap: the newest stored company profile
(``refresh_company_profiles`` fills it), one read for the page's rows; sector: the index lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mds.analysis.base import TECHNICAL, AnalysisStore
from mds.domain.profile import CompanyProfile, format_market_cap
from mds.errors import NotFound
from mds.services.market import MarketService
from mds.storage.base import ProfileStore, ReferenceStore

#: Optional columns, in display order, with their headers.
COLUMNS: dict[str, str] = {
    "price": "Price",
    "atr": "ATR(14)",
    "stage": "Stage",
    "market_cap": "Market cap",
    "sector": "Sector",
}
NO_PROFILE = "no company profile stored: run refresh_company_profiles (Refresh market caps)"


@dataclass(slots=True)
class TrackedRow:
    symbol: str
    indexes: list[str] = field(default_factory=list)
    new: bool = False
    cells: dict[str, Any] = field(default_factory=dict)


def chosen(cols: Sequence[str]) -> list[str]:
    """The known columns of ``cols``, in display order (unknown names are dropped)."""
    return [c for c in COLUMNS if c in cols]


async def fill_rows(
    symbols: Sequence[str],
    cols: Sequence[str],
    *,
    new: frozenset[str],
    market: MarketService,
    analysis: AnalysisStore,
    reference: ReferenceStore,
    profiles: ProfileStore,
    now: datetime,
) -> list[TrackedRow]:
    """One row per symbol of the page with the chosen columns' cells.

    A cell is a dict: ``value`` (None: nothing known) and ``title`` (where it comes from,
    or why it is empty), so the template shows either with no logic of its own.
    """
    members = await reference.index_members(active_only=True)
    indexes: dict[str, list[str]] = {}
    sectors: dict[str, str] = {}
    for m in members:
        indexes.setdefault(m.symbol, []).append(m.index)
        if m.sector:
            sectors.setdefault(m.symbol, m.sector)
    rows = [TrackedRow(s, sorted(indexes.get(s, [])), s in new) for s in symbols]
    stored = await profiles.profiles(list(symbols)) if "market_cap" in cols else {}
    for row in rows:
        if "price" in cols:
            row.cells["price"] = await _price(market, row.symbol)
        if "atr" in cols or "stage" in cols:
            snap = await analysis.get_cache(row.symbol, TECHNICAL, now=now)
            s = snap.snapshot if snap is not None else None
            why = "no cached snapshot: run recompute_indicators_universe (or Recompute)"
            if "atr" in cols:
                atr = None if s is None else s.get("atr_14")
                pct = None if s is None else s.get("atr_pct")
                row.cells["atr"] = {
                    "value": None
                    if atr is None
                    else f"{atr:.2f}" + ("" if pct is None else f" ({pct:.1f}%)"),
                    "title": why if s is None else f"snapshot of {s.get('as_of')}",
                }
            if "stage" in cols:
                row.cells["stage"] = {
                    "value": None if s is None else s.get("stage_label"),
                    "title": why if s is None else f"snapshot of {s.get('as_of')}",
                }
        if "market_cap" in cols:
            row.cells["market_cap"] = _market_cap(stored.get(row.symbol))
        if "sector" in cols:
            sector = sectors.get(row.symbol)
            row.cells["sector"] = {
                "value": sector,
                "title": "index lists" if sector else "not in an index list that gives sectors",
            }
    return rows


def _market_cap(profile: CompanyProfile | None) -> dict[str, Any]:
    if profile is None:
        return {"value": None, "title": NO_PROFILE}
    learned = profile.as_of.isoformat(timespec="seconds") if profile.as_of else "?"
    if profile.market_cap is None:
        return {"value": None, "title": f"{profile.provider} gives no market cap (at {learned})"}
    return {
        "value": format_market_cap(profile.market_cap, profile.currency),
        "title": f"{profile.provider} at {learned}",
    }


async def _price(market: MarketService, symbol: str) -> dict[str, Any]:
    try:
        p = await market.price(symbol)
    except NotFound as exc:
        return {"value": None, "title": str(exc)}
    return {"value": f"{p['price']:.2f}", "title": f"{p['source']} from {p['provider']} at {p['ts']}"}
