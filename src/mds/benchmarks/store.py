"""SQLite PIT store: write, no-op re-write and revision throughput; latest vs as_of reads.

"Reads of latest must not pay for history": ``latest_read_ratio`` compares reading the
newest bars before and after every bar gained three revisions, in the same run.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mds.domain.models import Bar, Interval
from mds.storage.sqlite import SqliteStore

START = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)


def _bars(symbols: int, per_symbol: int, bump: float = 0.0) -> list[Bar]:
    out = []
    for s in range(symbols):
        for i in range(per_symbol):
            p = 100.0 + s + i * 0.01 + bump
            out.append(
                Bar(
                    f"S{s:04d}",
                    Interval.M1,
                    START + timedelta(minutes=i),
                    p,
                    p + 0.05,
                    p - 0.05,
                    p,
                    1000.0,
                    "bench",
                )
            )
    return out


async def _timed(coro) -> tuple[object, float]:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    result = await coro
    return result, time.perf_counter() - t


async def _read_all(store: SqliteStore, symbols: int, per_symbol: int, as_of: datetime | None = None) -> int:
    end = START + timedelta(minutes=per_symbol)
    n = 0
    for s in range(symbols):
        n += len(await store.read_bars(f"S{s:04d}", Interval.M1, START, end, as_of=as_of))
    return n


async def _run(symbols: int, per_symbol: int) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="mds-bench-store-"))
    store = SqliteStore(str(workdir / "bench.db"))
    await store.open()
    try:
        t1 = START + timedelta(days=1)
        base = _bars(symbols, per_symbol)
        n = len(base)
        _, write_s = await _timed(store.write_bars(base, as_of=t1))
        _, noop_s = await _timed(store.write_bars(base, as_of=t1 + timedelta(hours=1)))
        _, latest_before = await _timed(_read_all(store, symbols, per_symbol))
        revise_s = 0.0
        for k in range(1, 4):
            _, dt = await _timed(
                store.write_bars(_bars(symbols, per_symbol, bump=0.01 * k), as_of=t1 + timedelta(hours=1 + k))
            )
            revise_s += dt
        _, latest_after = await _timed(_read_all(store, symbols, per_symbol))
        got, as_of_s = await _timed(
            _read_all(store, symbols, per_symbol, as_of=t1 + timedelta(hours=2, minutes=30))
        )
        assert got == n
    finally:
        await store.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "benchmark": "store",
        "bars": n,
        "write_bars_per_sec": round(n / write_s),
        "noop_rewrite_bars_per_sec": round(n / noop_s),
        "revise_bars_per_sec": round(3 * n / revise_s),
        "read_latest_seconds": round(latest_after, 3),
        "read_as_of_seconds": round(as_of_s, 3),
        "latest_read_ratio_after_3_revisions": round(latest_after / latest_before, 2),
    }


def run(symbols: int = 100, per_symbol: int = 390) -> dict[str, object]:
    return asyncio.run(_run(symbols, per_symbol))
