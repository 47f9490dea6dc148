"""The AnalysisStore protocol: where analysis snapshots live (seed 004's
MarketAnalysisCache and MarketAnalysisHistory), and its entry types.

Kept apart from the :class:`~mds.storage.base.Store` protocol on purpose, so the
PostgreSQL store could land without waiting for analysis. Each storage backend
implements it on its own tables, in the same database as the bars
(:class:`mds.storage.sqlite.analysis.SqliteAnalysisStore`,
:class:`mds.storage.postgres.analysis.PostgresAnalysisStore`);
:func:`mds.storage.factory.analysis_store_for` picks the one that goes with a bar store,
and ``tests/contract/test_analysis_store_contract.py`` holds both to the same assertions.

History rows are immutable: writing a key that exists raises :class:`HistoryExists`
(the bulk writer reports such keys as refused instead), and triggers refuse UPDATE and
DELETE at the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import orjson

from mds.errors import Conflict

#: The analysis type of the technical snapshot (the history key's middle part).
TECHNICAL = "technical"


class HistoryExists(Conflict):
    """A history row with this (symbol, analysis_type, as_of_date) is already recorded.

    History is immutable: the first record stands. The API answers 409.
    """

    def __init__(self, symbol: str, analysis_type: str, as_of_date: str) -> None:
        super().__init__(
            "analysis history",
            f"{symbol}/{analysis_type}/{as_of_date}",
            f"history for {symbol} {analysis_type} {as_of_date} is already recorded",
        )
        self.symbol = symbol
        self.analysis_type = analysis_type
        self.as_of_date = as_of_date


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One cached snapshot.

    Attributes:
        symbol: Ticker.
        analysis_type: E.g. ``"technical"``.
        snapshot: The snapshot dict (JSON-ready).
        computed_at: When it was computed (UTC).
        expires_at: When it stops being served (UTC).
    """

    symbol: str
    analysis_type: str
    snapshot: dict[str, Any]
    computed_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One immutable history row; ``as_of_date`` is the snapshot's ISO session date."""

    symbol: str
    analysis_type: str
    as_of_date: str
    snapshot: dict[str, Any]
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class RecordResult:
    """Outcome of a bulk history write: keys written and keys refused (already there)."""

    written: list[str]
    refused: list[str]


class AnalysisStore(Protocol):
    async def daily_bars(
        self, symbols: Sequence[str], end: datetime, *, as_of: datetime | None, limit: int
    ) -> dict[str, np.ndarray]:
        """The newest ``limit`` daily bars with ``ts < end`` per symbol, as MDS knew them
        at ``as_of`` (current revisions when None).

        The bulk read for building many snapshots: straight into arrays, with exactly the
        point-in-time rule of the bar store's ``read_bars`` (building 8,000 snapshots
        through ``Bar`` objects would spend most of its time making tuples).

        Returns:
            Symbol -> ``(k, 5)`` float64 array of epoch-second ts, open, high, low, close
            in time order; symbols without bars map to an empty ``(0, 5)`` array.
        """
        ...

    async def put_cache(self, entries: Sequence[CacheEntry]) -> int:
        """Replace the cached snapshot of each (symbol, analysis_type); return how many.

        When a key repeats in ``entries`` the last one wins.
        """
        ...

    async def get_cache(self, symbol: str, analysis_type: str, *, now: datetime) -> CacheEntry | None:
        """The cached snapshot, or None when there is none or it expired by ``now``."""
        ...

    async def insert_history(self, entry: HistoryEntry) -> None:
        """Record one row. Raises HistoryExists when its key is already recorded."""
        ...

    async def record_history(self, entries: Sequence[HistoryEntry]) -> RecordResult:
        """Record rows whose key is new; report the others as refused (never overwrite).

        A key repeated within ``entries``: the first is offered, the rest are refused.
        """
        ...

    async def get_history(self, symbol: str, analysis_type: str, as_of_date: str) -> HistoryEntry | None:
        """The history row of this key, or None."""
        ...

    async def list_history(self, symbol: str, analysis_type: str, start: str, end: str) -> list[HistoryEntry]:
        """Rows with ``start <= as_of_date <= end`` (ISO dates), oldest first."""
        ...


def snapshot_json(snapshot: dict[str, Any]) -> str:
    """The snapshot as JSON text, as both backends store it (``raw_analysis``)."""
    return orjson.dumps(snapshot).decode()


def headline(snapshot: dict[str, Any]) -> tuple[Any, ...]:
    """The cache table's headline columns beside the JSON: ma_bucket, stage label, slope, distance."""
    return (
        snapshot.get("ma_bucket"),
        snapshot.get("stage_label"),
        snapshot.get("stage_slope_pct"),
        snapshot.get("stage_dist_pct"),
    )
