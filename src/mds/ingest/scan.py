"""The full gap scan: every symbol's stored bars against the calendar's expected bars.

The per-symbol work happens in the store (:meth:`mds.storage.base.ContinuityStore.scan_missing`
counts in SQL and returns only what is missing); this module decides which bars are
expected and turns what is missing into :class:`mds.ingest.gaps.Gap` runs. Bars before a
symbol's known first trade (:class:`mds.storage.base.ListingStore`) are not expected, so
a scan never queues work for sessions before a listing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from mds.calendar import MarketCalendar
from mds.domain.models import Interval, ensure_utc
from mds.ingest.gaps import Gap, gaps_for
from mds.storage.base import ContinuityStore, ListingStore


class ScanStore(ContinuityStore, ListingStore, Protocol):
    """What a gap scan reads: what is missing, and when each symbol began to trade."""


def closed_expected(
    calendar: MarketCalendar, interval: Interval, start: datetime, end: datetime, now: datetime
) -> np.ndarray:
    """Expected bar times in ``[start, min(end, now))`` whose interval has closed by ``now``.

    Only the last of them can still be open (it is the one containing ``now``).
    """
    stop = min(ensure_utc(end), ensure_utc(now))
    expected = calendar.expected_epochs(interval, start, stop)
    if expected.size:
        last = datetime.fromtimestamp(int(expected[-1]), UTC)
        if calendar.bar_end(last, interval) > ensure_utc(now):
            expected = expected[:-1]
    return expected


async def scan_gaps(
    store: ScanStore,
    calendar: MarketCalendar,
    *,
    symbols: Sequence[str],
    interval: Interval,
    start: datetime,
    end: datetime,
    now: datetime,
) -> list[Gap]:
    """Every run of closed, expected bars that is neither stored nor confirmed empty.

    Args:
        store: Where the bars are.
        calendar: The exchange calendar that says which bars a complete series holds.
        symbols: The symbols to check.
        interval: The bar interval to check.
        start: First bar time considered (inclusive).
        end: Bar times before this are considered (exclusive).
        now: Bars that have not closed by now are not expected yet.

    Returns:
        Gaps sorted by (symbol, start); none before a symbol's known first trade.
    """
    interval = Interval(interval)
    expected = closed_expected(calendar, interval, start, end, now)
    if expected.size == 0 or not symbols:
        return []
    missing, _ = await _missing(store, interval, expected, symbols)
    return await _runs(interval, expected, missing)


async def _runs(interval: Interval, expected: np.ndarray, missing: dict[str, np.ndarray]) -> list[Gap]:
    if len(missing) < _INLINE_SYMBOLS:
        return _gaps(interval, expected, missing)
    # Thousands of symbols missing bars (a fresh database) take seconds to cut into runs;
    # off the event loop, live sweeps keep their cadence meanwhile.
    return await asyncio.to_thread(_gaps, interval, expected, missing)


async def _missing(
    store: ScanStore, interval: Interval, expected: np.ndarray, symbols: Sequence[str]
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """What is missing at or after each symbol's first trade, and those first trades (epochs).

    One query for the listings of every symbol, one for what is missing.
    """
    listed = {s: int(t.timestamp()) for s, t in (await store.first_trade_sessions(symbols)).items()}
    missing = await store.scan_missing(interval, expected, symbols)
    for symbol, first in listed.items():
        got = missing.get(symbol)
        if got is None or got.size == 0 or got[0] >= first:
            continue
        kept = got[got >= first]
        if kept.size:
            missing[symbol] = kept
        else:
            del missing[symbol]
    return missing, listed


#: Below this many symbols with missing bars, cutting runs is quick enough for the loop.
_INLINE_SYMBOLS = 200


def _gaps(interval: Interval, expected: np.ndarray, missing: dict[str, Any]) -> list[Gap]:
    gaps: list[Gap] = []
    for symbol in sorted(missing):
        present = expected[~np.isin(expected, missing[symbol], assume_unique=True)]
        gaps.extend(gaps_for(symbol, interval, expected, present))
    return gaps


def summarize(gaps: Sequence[Gap]) -> dict[str, Any]:
    """Totals for CLI and API output.

    Returns:
        ``{"gaps": n, "missing_bars": n, "symbols_affected": n}``.
    """
    return {
        "gaps": len(gaps),
        "missing_bars": sum(g.missing_bars for g in gaps),
        "symbols_affected": len({g.symbol for g in gaps}),
    }


async def coverage(
    store: ScanStore,
    calendar: MarketCalendar,
    *,
    symbols: Sequence[str],
    interval: Interval,
    start: datetime,
    end: datetime,
    now: datetime,
) -> dict[str, Any]:
    """Coverage figures for a symbol set: expected closed bars, stored, missing, and
    confirmed empty ("no trades") counted apart from missing. Bars before a symbol's
    known first trade are not expected."""
    interval = Interval(interval)
    expected = closed_expected(calendar, interval, start, end, now)
    if expected.size == 0 or not symbols:
        missing: dict[str, np.ndarray] = {}
        listed: dict[str, int] = {}
    else:
        missing, listed = await _missing(store, interval, expected, symbols)
    gaps = await _runs(interval, expected, missing)
    empty = await store.count_confirmed_empty(interval, start, end, list(symbols)) if symbols else 0
    before = sum(int(np.searchsorted(expected, first)) for first in listed.values())
    total = int(expected.size) * len(symbols) - before
    missing_bars = sum(g.missing_bars for g in gaps)
    stored = total - missing_bars - empty
    return {
        "symbols": len(symbols),
        "symbols_complete": len(symbols) - len({g.symbol for g in gaps}),
        "expected_bars": total,
        "stored_bars": stored,
        "missing_bars": missing_bars,
        "confirmed_empty_bars": empty,
        "coverage_pct": round(100.0 * (stored + empty) / total, 3) if total else 100.0,
    }
