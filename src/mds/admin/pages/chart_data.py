"""The symbol page's chart data: stored bars with their provider, and where the series they
come from has holes (gaps) or confirmed "no trades" bar times, all point in time.

Bars come from :meth:`MarketService.history` (the API's read: rollup, ``adjust``, ``as_of``).
Gaps are computed as the gap scan computes them (:func:`mds.ingest.scan.closed_expected`,
:func:`mds.ingest.gaps.gaps_for`: closed expected bar times from the first trade on, neither
stored nor confirmed empty) but over the bars known at ``as_of``, so the chart of what MDS
knew at T shows the holes it had at T. Confirmed-empty bar times have no knowledge time of
their own; they are the store's current ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from mds.calendar import MarketCalendar
from mds.corporate.adjust import Adjust
from mds.domain.clock import Clock
from mds.domain.models import Bar, Interval
from mds.ingest.gaps import gaps_for
from mds.ingest.scan import closed_expected
from mds.serialize import iso
from mds.services.market import MarketService
from mds.storage.base import BarStore, ContinuityStore, ListingStore

#: The chart's intervals and the period each one shows (ending now).
PERIODS: dict[Interval, str] = {Interval.D1: "1y", Interval.M5: "5d", Interval.M1: "1d"}
#: At most this many marks (missing or empty bar times) go to the browser; the gap ranges
#: themselves are always complete.
MAX_MARKS = 5_000


class ChartStore(BarStore, ContinuityStore, ListingStore, Protocol):
    """What the chart reads besides the market service: 1m bars behind a 5m view, the
    confirmed-empty bar times, and the first trade session."""


def _epochs(bars: list[Bar]) -> np.ndarray:
    return np.fromiter((int(b.ts.timestamp()) for b in bars), dtype=np.int64, count=len(bars))


def _bucket(epochs: np.ndarray, interval: Interval) -> np.ndarray:
    """Bar times of ``interval`` holding ``epochs`` (1m times under a 5m view).

    Intraday buckets are aligned to the epoch: XNYS sessions open on a 5-minute boundary.
    """
    if interval is Interval.D1 or epochs.size == 0:
        return epochs
    return np.unique(epochs - epochs % interval.seconds)


def _bar_row(b: Bar) -> dict[str, Any]:
    return {
        "time": int(b.ts.timestamp()),
        "open": b.open,
        "high": b.high,
        "low": b.low,
        "close": b.close,
        "volume": b.volume,
        "provider": b.provider,
        "status": b.status.value,
        "as_of": iso(b.as_of) if b.as_of else None,
    }


async def chart_data(
    market: MarketService,
    store: ChartStore,
    calendar: MarketCalendar,
    clock: Clock,
    *,
    symbol: str,
    interval: Interval,
    adjust: Adjust = Adjust.RAW,
    as_of: datetime | None = None,
    period: str | None = None,
) -> dict[str, Any]:
    """Bars of ``symbol`` over ``period`` (default :data:`PERIODS`) as MDS knew them at
    ``as_of``, each with its provider, plus the gaps and confirmed-empty bar times of the
    stored series they come from (1m under a rolled-up 5m view).

    Raises:
        NotFound: ``symbol`` is not in the active universe.
        InvalidRequest: A bad period, or an intraday range past 31 days.
    """
    result = await market.history(symbol, period or PERIODS[interval], interval, adjust=adjust, as_of=as_of)
    sym, start, end = result.symbol, result.start, result.end
    now = clock.now() if as_of is None else min(as_of, clock.now())
    source, present = interval, _epochs(result.bars)
    if interval is Interval.M5:
        # MarketService rolls 5m up from 1m wherever the range holds 1m bars: holes are 1m holes then.
        minutes = await store.read_bars(sym, Interval.M1, start, end, as_of=as_of)
        if minutes:
            source, present = Interval.M1, _epochs(minutes)
    empty = np.asarray(await store.confirmed_empty(sym, source, start, end), dtype=np.int64)
    expected = closed_expected(calendar, source, start, end, now)
    listed = (await store.first_trade_sessions([sym])).get(sym)
    if listed is not None:
        expected = expected[expected >= int(listed.timestamp())]
    known = np.union1d(present, empty)
    gaps = gaps_for(sym, source, expected, known)
    missing = expected[~np.isin(expected, known)]
    kinds = [(int(t), "gap") for t in _bucket(missing, interval)]
    kinds += [(int(t), "empty") for t in _bucket(empty, interval)]
    marks = [{"time": t, "kind": k} for t, k in sorted(kinds)]
    return {
        "symbol": sym,
        "interval": interval.value,
        "source_interval": source.value,
        "adjust": adjust.value,
        "as_of": iso(as_of) if as_of else None,
        "start": iso(start),
        "end": iso(end),
        "count": len(result.bars),
        "bars": [_bar_row(b) for b in result.bars],
        "providers": sorted({b.provider for b in result.bars}),
        "gaps": [{"start": iso(g.start), "end": iso(g.end), "missing_bars": g.missing_bars} for g in gaps],
        "missing_bars": int(missing.size),
        "empty": [iso(datetime.fromtimestamp(int(t), tz=UTC)) for t in empty[:MAX_MARKS]],
        "empty_count": int(empty.size),
        "marks": marks[:MAX_MARKS],
        "marks_truncated": len(marks) > MAX_MARKS,
        "adjustment": result.adjustment.describe(),
    }
