"""Loading the symbol universe from a directory, and ranking it into tiers.

The rank's declared measure: the median daily dollar volume (close x volume) over a
symbol's last :data:`RANK_SESSIONS` stored daily bars, where MDS holds any; symbols
without one follow, in the order their source lists them. The first ``TIER_MAXS__T0``
symbols are T0, the next ``TIER_MAXS__T1`` T1, the rest T2. Every tier change is recorded.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from mds.config import Settings
from mds.domain.clock import Clock
from mds.domain.models import Tier
from mds.domain.records import UniverseChange, UniverseEntry
from mds.domain.reference import SymbolDirectory
from mds.storage.base import UniverseStore

#: Sessions the ranking measure looks back over.
RANK_SESSIONS = 20
MEASURE = f"median daily dollar volume over the last {RANK_SESSIONS} stored sessions"


def ranked(symbols: Sequence[str], measures: Mapping[str, float]) -> list[str]:
    """Symbols with a measure, largest first, then the rest in their given order."""
    known = sorted((s for s in symbols if s in measures), key=lambda s: -measures[s])
    return known + [s for s in symbols if s not in measures]


def tiers_by_rank(order: Sequence[str], settings: Settings) -> dict[str, Tier]:
    t0, t1 = settings.TIER_MAXS.T0, settings.TIER_MAXS.T1
    return {s: Tier.T0 if i < t0 else Tier.T1 if i < t0 + t1 else Tier.T2 for i, s in enumerate(order)}


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did, for the CLI and the API."""

    source: str
    file_time: str | None
    symbols: int
    etfs: int
    change: UniverseChange
    ranked_by_measure: int  # symbols whose tier came from the measure (the rest: file order)


async def import_directory(
    store: UniverseStore,
    directory: SymbolDirectory,
    *,
    settings: Settings,
    clock: Clock,
    keep_active: Collection[str] = (),
    fixed_tiers: Mapping[str, Tier] | None = None,
) -> ImportReport:
    """Make ``directory`` the universe: new symbols added, absent ones inactive (except
    ``keep_active``, the tracked set), everyone re-ranked into tiers (``fixed_tiers``, a
    CSV's own tier column, wins over the rank)."""
    symbols = [d.symbol for d in directory.symbols]
    measures = await store.dollar_volume_medians(symbols, sessions=RANK_SESSIONS)
    tiers = tiers_by_rank(ranked(symbols, measures), settings) | dict(fixed_tiers or {})
    entries = [
        UniverseEntry(symbol=d.symbol, tier=tiers[d.symbol], name=d.name, exchange=d.exchange, etf=d.etf)
        for d in directory.symbols
    ]
    now = clock.now()
    stamp = (directory.file_time or now).strftime("%Y%m%dT%H%M%SZ")
    digest = zlib.crc32(",".join(f"{e.symbol}:{e.tier.value}" for e in entries).encode())
    change = await store.upsert_universe(
        entries,
        version_tag=f"{directory.source}-{stamp}-{len(entries)}-{digest:08x}",
        source_meta={"source": directory.source, "measure": MEASURE},
        now=now,
        source=directory.source,
        file_time=directory.file_time,
        measures=measures,
        keep_active=keep_active,
    )
    return ImportReport(
        source=directory.source,
        file_time=None if directory.file_time is None else directory.file_time.isoformat(),
        symbols=len(entries),
        etfs=sum(1 for e in entries if e.etf),
        change=change,
        ranked_by_measure=len(measures),
    )


async def retier(store: UniverseStore, *, settings: Settings, clock: Clock) -> tuple[int, int]:
    """Re-rank the active universe by the measure; returns (symbols ranked, tier changes).

    Symbols without a measure keep their relative order (by current tier, then symbol).
    """
    active = await store.universe()
    symbols = [e.symbol for e in active]
    measures = await store.dollar_volume_medians(symbols, sessions=RANK_SESSIONS)
    tiers = tiers_by_rank(ranked(symbols, measures), settings)
    moved = await store.set_tiers(tiers, measures=measures, reason="retier", now=clock.now())
    return len(symbols), moved
