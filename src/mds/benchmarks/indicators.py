"""Indicator engine throughput: the full snapshot vs TA-Lib alone, same arrays, same run.

``seconds`` is :func:`mds.analysis.indicators.compute` plus turning the columns into
JSON-ready snapshot dicts (every field, hand-written ones included);
``talib_only_seconds`` is exactly the TA-Lib calls ``compute`` makes, on the same arrays.
Each is timed ``repeats`` times, interleaved, and the best run kept, so a noisy neighbour
does not decide the ratio.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np

from mds.analysis import indicators as ind
from mds.analysis.snapshot import session_table
from mds.calendar import get_calendar

_END = datetime(2025, 10, 8, tzinfo=UTC)


def make_batch(symbols: int, bars: int, seed: int = 1) -> tuple[ind.BarBatch, np.ndarray]:
    """Random-walk daily bars on the last ``bars`` XNYS sessions before 2025-10-08."""
    _, sessions = session_table(get_calendar("XNYS"), _END - timedelta(days=2 * bars + 30), _END)
    days = sessions[-bars:]
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.015, (symbols, bars)), axis=1))
    o = c * np.exp(rng.normal(0, 0.006, (symbols, bars)))
    h = np.maximum(o, c) * (1 + rng.uniform(0, 0.01, (symbols, bars)))
    low = np.minimum(o, c) * (1 - rng.uniform(0, 0.01, (symbols, bars)))
    day = np.broadcast_to(days, (symbols, bars)).copy()
    names = [f"S{i:05d}" for i in range(symbols)]
    return ind.BarBatch(names, o, h, low, c, day, np.full(symbols, bars, dtype=np.int64)), sessions


def run(symbols: int = 8000, bars: int = 270, repeats: int = 5) -> dict[str, object]:
    batch, sessions = make_batch(symbols, bars)
    ind.snapshots(ind.compute(batch, sessions))  # warm caches and code paths once
    full, talib_only = [], []
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        ind.talib_only(batch)
        talib_only.append(time.perf_counter() - t)
        t = time.perf_counter()
        snaps = ind.snapshots(ind.compute(batch, sessions))
        full.append(time.perf_counter() - t)
        assert len(snaps) == symbols
    seconds, base = min(full), min(talib_only)
    return {
        "symbols": symbols,
        "bars": bars,
        "seconds": round(seconds, 3),
        "talib_only_seconds": round(base, 3),
        "ratio": round(seconds / base, 2),
    }
