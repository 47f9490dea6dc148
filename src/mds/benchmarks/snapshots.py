"""Full snapshot refresh from the SQLite store, end to end.

A temporary SQLite store gets ``symbols`` symbols with ``bars`` daily bars each (a random
walk at real XNYS session opens; filling is not timed). ``seconds`` is one
``AnalysisService.refresh()``: read every symbol's bars point-in-time-safely, compute every
field, and write MarketAnalysisCache. ``record_history_seconds`` is the nightly history
write of the same universe.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from mds.analysis.service import AnalysisService
from mds.calendar import get_calendar
from mds.domain.clock import ManualClock
from mds.domain.models import Bar, Interval, Tier
from mds.domain.records import UniverseEntry
from mds.services.market import MarketService
from mds.storage.sqlite import SqliteStore
from mds.storage.sqlite.analysis import SqliteAnalysisStore

NOW = datetime(2025, 10, 8, 22, 0, tzinfo=UTC)


async def _fill(store: SqliteStore, symbols: list[str], bars: int) -> None:
    cal = get_calendar("XNYS")
    opens = [s.open for s in cal.sessions(NOW - timedelta(days=2 * bars + 30), NOW)][-bars:]
    rng = np.random.default_rng(3)
    await store.upsert_universe(
        [UniverseEntry(s, Tier.T2) for s in symbols], version_tag="bench", source_meta={}
    )
    chunk: list[Bar] = []
    for sym in symbols:
        c = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.015, bars))), 2)
        o = np.round(c * np.exp(rng.normal(0, 0.006, bars)), 2)
        h = np.maximum(o, c) + 0.05
        low = np.minimum(o, c) - 0.05
        chunk.extend(
            Bar(sym, Interval.D1, ts, bo, bh, bl, bc, 1e6, "bench")
            for ts, bo, bh, bl, bc in zip(
                opens, o.tolist(), h.tolist(), low.tolist(), c.tolist(), strict=True
            )
        )
        if len(chunk) >= 200_000:
            await store.write_bars(chunk, as_of=NOW)
            chunk = []
    if chunk:
        await store.write_bars(chunk, as_of=NOW)


async def _run(symbols: int, bars: int) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="mds-bench-snapshots-"))
    store = SqliteStore(workdir / "bench.db")
    await store.open()
    try:
        names = [f"S{i:05d}" for i in range(symbols)]
        t = time.perf_counter()
        await _fill(store, names, bars)
        fill_s = time.perf_counter() - t
        clock = ManualClock(NOW)
        cal = get_calendar("XNYS")
        service = AnalysisService(
            store=store,
            analysis=SqliteAnalysisStore(store),
            calendar=cal,
            clock=clock,
            market=MarketService(store=store, calendar=cal, clock=clock),
            ttl_sec=86_400,
            bars=bars,
        )
        t = time.perf_counter()
        out = await service.refresh()
        seconds = time.perf_counter() - t
        assert out["symbols"] == symbols and not out["without_bars"]
        t = time.perf_counter()
        rec = await service.record_history()
        record_s = time.perf_counter() - t
        assert rec["recorded"] == symbols
    finally:
        await store.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "benchmark": "snapshots",
        "symbols": symbols,
        "bars": bars,
        "seconds": round(seconds, 3),
        "record_history_seconds": round(record_s, 3),
        "fill_seconds": round(fill_s, 3),
    }


def run(symbols: int = 8000, bars: int = 300) -> dict[str, object]:
    return asyncio.run(_run(symbols, bars))
