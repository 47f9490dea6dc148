"""The export limit (issue 17): 500 symbols x 1 year of daily bars to Parquet in under 10 s.

A temporary SQLite store is filled with a year of the sim market's daily bars for
``symbols`` symbols (``S0000``, ``S0001`` ...; not timed), then exported by
:func:`mds.export.dataset.export_dataset` reading the store's raw bars, the code path of
``mds export``: ``seconds`` is that export. A second export of the unchanged store
(``resume_seconds``) must skip every partition, and says what a resumed run costs.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mds.domain.models import Bar, Interval
from mds.export.dataset import export_dataset
from mds.providers.sim.market import SimMarket
from mds.storage.sqlite import SqliteStore

START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 1, tzinfo=UTC)
LIMIT_SECONDS = 10.0


async def _run(symbols: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="mds-bench-export-"))
    store = SqliteStore(str(workdir / "bench.db"))
    await store.open()
    try:
        market = SimMarket()
        names = [f"S{i:04d}" for i in range(symbols)]
        for name in names:
            await store.write_bars(market.bars(name, Interval.D1, START, END), as_of=END)

        async def read(symbol: str, interval: Interval, start: datetime, end: datetime) -> list[Bar]:
            return await store.read_bars(symbol, interval, start, end)

        out = workdir / "dataset"
        t0 = time.perf_counter()
        report = await export_dataset(read, names, Interval.D1, START, END, out)
        seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        again = await export_dataset(read, names, Interval.D1, START, END, out)
        resume_seconds = time.perf_counter() - t1
        size = sum(p.stat().st_size for p in out.rglob("*.parquet"))
    finally:
        await store.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "benchmark": "export",
        "symbols": symbols,
        "rows": report.rows,
        "partitions": report.written,
        "seconds": round(seconds, 3),
        "rows_per_s": round(report.rows / seconds) if seconds else None,
        "bytes": size,
        "resume_seconds": round(resume_seconds, 3),
        "resume_skipped": again.skipped,
        "limit_seconds": LIMIT_SECONDS,
        "ok": seconds < LIMIT_SECONDS and again.written == 0,
    }


def run(symbols: int = 500) -> dict[str, Any]:
    """Fill a temporary store, export it twice (fresh, then resumed); see the module docstring."""
    return asyncio.run(_run(symbols))
