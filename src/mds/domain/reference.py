"""Reference data: listed symbols, index membership, holdings and the tracked set.

Symbol convention (one for every source): upper case, a share class after a dot
(``BRK.B``, ``BF.B``), as the CQS and ACT columns of the NASDAQ Trader directory and
Wikipedia's lists write it. Vendors that write ``BRK-B`` or ``BRK/B`` are translated at
their adapter's edge by :func:`mds.domain.reference.mds_symbol`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, get_args

#: The indexes MDS keeps constituents for (seed 004; R2K is a roadmap item there).
IndexName = Literal["SP500", "NASDAQ100", "DOW30"]
INDEXES: tuple[IndexName, ...] = get_args(IndexName)

_CLASS_SEPARATOR = re.compile(r"[-/]")
#: A ticker as a user may write it (any case, suffixes after ``.``, ``-`` or ``/``): a base of
#: 1-7, then up to two suffixes of 1-4 (``BRK.B``, ``brk-b``, ``ABR.PR.D``). In JSON Schema's
#: regex subset, so the API publishes the same rule it applies.
TICKER_PATTERN = "^[A-Za-z][A-Za-z0-9]{0,6}(?:[./-][A-Za-z0-9]{1,4}){0,2}$"


def mds_symbol(text: str) -> str:
    """One vendor's spelling of a ticker in MDS's convention: ``brk-b``/``BRK/B`` -> ``BRK.B``."""
    return _CLASS_SEPARATOR.sub(".", text.strip().upper())


@dataclass(frozen=True, slots=True)
class ListedSymbol:
    """One row of a symbol directory (NASDAQ Trader), translated.

    ``source_symbol`` is the directory's own spelling when it differs from ``symbol``.
    """

    symbol: str
    name: str
    exchange: str
    etf: bool = False
    source_symbol: str = ""


@dataclass(frozen=True, slots=True)
class SymbolDirectory:
    """A parsed directory: its rows and the ``File Creation Time`` its trailer names."""

    symbols: list[ListedSymbol]
    file_time: datetime | None
    source: str


@dataclass(frozen=True, slots=True)
class Constituent:
    """One member of an index as a source lists it."""

    symbol: str
    name: str = ""
    sector: str = ""
    sub_industry: str = ""


@dataclass(frozen=True, slots=True)
class IndexMember:
    """One row of ``index_constituents``: membership, current or past."""

    index: IndexName
    symbol: str
    name: str
    sector: str
    sub_industry: str
    is_active: bool
    first_seen_at: datetime
    became_inactive_at: datetime | None
    source: str


@dataclass(frozen=True, slots=True)
class ConstituentChange:
    """What applying one fetched list did (or would do) to an index's rows."""

    fetched: int
    inserted: int
    reactivated: int
    inactivated: int


@dataclass(frozen=True, slots=True)
class IndexRefresh:
    """The record of one refresh of one index (``index_refreshes``)."""

    index: IndexName
    started_at: datetime
    fetched: int
    inserted: int
    reactivated: int
    inactivated: int
    provider_used: str
    fallback_used: bool
    applied: bool
    reason: str = ""

    def counters(self) -> dict[str, object]:
        """What seed 004's job run records of an index refresh."""
        return {
            "applied": self.applied,
            "fetched": self.fetched,
            "inserted": self.inserted,
            "reactivated": self.reactivated,
            "inactivated": self.inactivated,
            "provider_used": self.provider_used,
            "fallback_used": self.fallback_used,
        }


@dataclass(frozen=True, slots=True)
class Holding:
    symbol: str
    added_at: datetime
    note: str = ""


@dataclass(frozen=True, slots=True)
class TrackedSet:
    """What MDS keeps complete: index members (active, and leavers for a while), holdings, SPY.

    ``new``: tracked symbols with fewer stored daily sessions than the tracked history
    (BACKFILL_TRACKED_SESSIONS), i.e. the ones a backfill still has to fill.
    """

    all: frozenset[str]
    new: frozenset[str]
    index_counts: dict[str, int] = field(default_factory=dict)
