"""The symbol universe: the demo's, a default for real providers, or a CSV file."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from mds.config import Settings
from mds.domain.models import Tier
from mds.domain.records import UniverseEntry
from mds.errors import ConfigError

# ~50 real tickers over three tiers: names users know, so the demo reads like a market.
DEMO_UNIVERSE: dict[Tier, tuple[str, ...]] = {
    Tier.T0: ("SPY", "QQQ", "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "IWM"),
    Tier.T1: (
        "JPM",
        "V",
        "UNH",
        "XOM",
        "JNJ",
        "WMT",
        "PG",
        "MA",
        "HD",
        "CVX",
        "KO",
        "PEP",
        "COST",
        "AVGO",
        "ADBE",
        "CRM",
        "NFLX",
        "AMD",
        "INTC",
        "DIA",
    ),
    Tier.T2: (
        "BA",
        "CAT",
        "DE",
        "GE",
        "HON",
        "IBM",
        "MMM",
        "NKE",
        "ORCL",
        "PFE",
        "SBUX",
        "T",
        "TGT",
        "UPS",
        "VZ",
        "DIS",
        "MCD",
        "LOW",
        "GS",
        "MS",
    ),
}


def demo_universe() -> list[UniverseEntry]:
    return [UniverseEntry(symbol=s, tier=t) for t, syms in DEMO_UNIVERSE.items() for s in syms]


def assign_tiers(symbols: Sequence[str], settings: Settings) -> list[UniverseEntry]:
    """Tiers by rank (symbols listed most liquid first): the first TIER_MAXS__T0 are T0, and so on."""
    t0, t1 = settings.TIER_MAXS.T0, settings.TIER_MAXS.T1
    out = []
    for i, s in enumerate(symbols):
        tier = Tier.T0 if i < t0 else Tier.T1 if i < t0 + t1 else Tier.T2
        out.append(UniverseEntry(symbol=s, tier=tier))
    return out


def load_universe_file(path: Path, settings: Settings) -> list[UniverseEntry]:
    """A CSV with a ``symbol`` column, optionally ``tier`` (T0/T1/T2) and ``name``.

    Rows without a tier are ranked in file order against TIER_MAXS.
    """
    if not path.exists():
        raise ConfigError("UNIVERSE_FILE", f"{path} does not exist")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "symbol" not in rows[0]:
        raise ConfigError("UNIVERSE_FILE", f"{path} needs a header with a 'symbol' column")
    ranked = assign_tiers([r["symbol"].strip().upper() for r in rows], settings)
    out = []
    for row, entry in zip(rows, ranked, strict=True):
        tier_text = (row.get("tier") or "").strip().upper()
        try:
            tier = Tier(tier_text) if tier_text else entry.tier
        except ValueError:
            raise ConfigError("UNIVERSE_FILE", f"{path}: bad tier {tier_text!r} for {entry.symbol}") from None
        out.append(UniverseEntry(symbol=entry.symbol, tier=tier, name=(row.get("name") or "").strip()))
    return out


def default_universe(settings: Settings) -> list[UniverseEntry]:
    """Without UNIVERSE_FILE, real providers track the demo's tickers with the same tiers."""
    if settings.UNIVERSE_FILE:
        return load_universe_file(Path(settings.UNIVERSE_FILE), settings)
    return demo_universe()
