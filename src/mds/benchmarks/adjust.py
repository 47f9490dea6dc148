"""Adjusted reads against raw reads of the same bars, side by side in one run.

The limit (issue 17): an adjusted read of one symbol-year of daily bars, and of one
symbol-day of 1m bars, costs at most 1.2x the raw read. Both go through
:class:`~mds.services.market.MarketService` on a SQLite store (no response cache, so every
read reads, but plans are remembered per series generation as in the service): a 4:1 split and four dividends inside the year, and a split effective the day
after the 1m day, so every minute bar is rebuilt (the worst case). Reads alternate raw,
split, all in rounds, so machine noise falls on all three alike; the figure is the ratio of
medians.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from mds.cache import InMemoryCache
from mds.calendar import get_calendar
from mds.corporate.adjust import Adjust
from mds.domain.actions import ActionType, CorporateAction
from mds.domain.clock import ManualClock
from mds.domain.models import Interval, Tier
from mds.providers.sim.market import ground_truth
from mds.services.market import MarketService
from mds.storage.sqlite import SqliteStore

NOW = datetime(2025, 12, 31, 22, 0, tzinfo=UTC)
YEAR = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
DAY = (datetime(2025, 12, 30, 14, 30, tzinfo=UTC), datetime(2025, 12, 30, 21, 0, tzinfo=UTC))
SYMBOL = "AAPL"


def _actions() -> list[CorporateAction]:
    split = CorporateAction(SYMBOL, ActionType.SPLIT, date(2025, 6, 9), ratio=4.0, source="bench")
    late = CorporateAction(SYMBOL, ActionType.SPLIT, date(2025, 12, 31), ratio=2.0, source="bench")
    divs = [
        CorporateAction(SYMBOL, ActionType.DIVIDEND, d, amount=0.05, currency="USD", source="bench")
        for d in (date(2025, 2, 10), date(2025, 5, 12), date(2025, 8, 11), date(2025, 11, 10))
    ]
    return [split, late, *divs]


async def _median_ratio(reads: dict[str, Callable[[], Awaitable[object]]], rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in reads}
    for _ in range(rounds):
        for name, read in reads.items():
            t = time.perf_counter()
            await read()
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "raw_ms": round(med["raw"] * 1000, 4),
        "split_ms": round(med["split"] * 1000, 4),
        "all_ms": round(med["all"] * 1000, 4),
        "split_ratio": round(med["split"] / med["raw"], 3),
        "all_ratio": round(med["all"] / med["raw"], 3),
    }


async def _only(
    market: MarketService, mode: Adjust, rounds: int, daily_year: int, minute_day: int
) -> dict[str, object]:
    """``rounds`` reads of each span in one mode only: the process ``farm-bench`` times against
    the same command in another mode."""
    t = time.perf_counter()
    for _ in range(rounds):
        await market.bars(SYMBOL, Interval.D1, *YEAR, adjust=mode)
        await market.bars(SYMBOL, Interval.M1, *DAY, adjust=mode)
    return {
        "benchmark": "adjust",
        "only": mode.value,
        "rounds": rounds,
        "bars": {"daily_year": daily_year, "minute_day": minute_day},
        "seconds": round(time.perf_counter() - t, 3),
    }


async def _run(rounds: int, only: Adjust | None = None) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="mds-bench-adjust-"))
    store = SqliteStore(str(workdir / "bench.db"))
    await store.open()
    try:
        await store.migrate()
        await store.ensure_symbols([SYMBOL], tier=Tier.T0, now=NOW)
        daily = ground_truth(SYMBOL, Interval.D1, *YEAR)
        minutes = ground_truth(SYMBOL, Interval.M1, *DAY)
        await store.write_bars(daily, as_of=NOW)
        await store.write_bars(minutes, as_of=NOW)
        await store.write_corporate_actions(_actions(), as_of=NOW - timedelta(days=400))
        # As the service runs: an in-process cache holds the series generations (no kept
        # response bytes, so every read reads the store).
        clock = ManualClock(NOW)
        market = MarketService(
            store=store,
            calendar=get_calendar("XNYS"),
            clock=clock,
            cache=InMemoryCache(clock),
            responses=None,
        )

        def reads(
            interval: Interval, span: tuple[datetime, datetime]
        ) -> dict[str, Callable[[], Awaitable[object]]]:
            return {
                mode.value: (lambda m=mode: market.bars(SYMBOL, interval, *span, adjust=m))  # type: ignore[misc]
                for mode in (Adjust.RAW, Adjust.SPLIT, Adjust.ALL)
            }

        checked = await market.bars(SYMBOL, Interval.M1, *DAY, adjust=Adjust.SPLIT)
        assert checked.adjustment.applied, "the 1m day must be adjusted by the next day's split"
        if only is not None:
            return await _only(market, only, rounds, len(daily), len(minutes))
        return {
            "benchmark": "adjust",
            "rounds": rounds,
            "daily_year": {"bars": len(daily), **await _median_ratio(reads(Interval.D1, YEAR), rounds)},
            "minute_day": {"bars": len(minutes), **await _median_ratio(reads(Interval.M1, DAY), rounds)},
            "limit_ratio": 1.2,
        }
    finally:
        await store.close()
        shutil.rmtree(workdir, ignore_errors=True)


def run(rounds: int = 300, only: Adjust | None = None) -> dict[str, object]:
    return asyncio.run(_run(rounds, only))
