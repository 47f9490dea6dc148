"""Full gap scan: one session of 1m bars for N symbols in SQLite, scanned against the calendar.

Target (issue "mds gaps"): 8,000 symbols x 390 bars = 3.1M bars scanned in under 3 s.
Building the store is not timed. A few symbols get planted holes (a single bar, a run,
the first and the last bar of the session), and one omitted bar is confirmed empty, so
the scan must find exactly the planted gaps and nothing else.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mds.calendar import get_calendar
from mds.domain.models import Bar, Interval
from mds.ingest.scan import scan_gaps, summarize
from mds.storage.sqlite import SqliteStore

SESSION_OPEN = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)  # a full 390-minute session
SESSION_CLOSE = SESSION_OPEN + timedelta(minutes=390)
NOW = SESSION_CLOSE + timedelta(hours=1)
_BATCH_SYMBOLS = 250
# Every _PLANT_EVERY-th symbol gets holes, cycling through these (minute indexes, runs).
_PLANT_EVERY = 1000
_HOLES: tuple[tuple[int, ...], ...] = ((17,), (100, 101, 102), (0,), (389,), (5, 200, 201))
_CONFIRMED_EMPTY_MINUTE = 250  # omitted for symbol 1, then confirmed empty: not a gap


def _symbol(i: int) -> str:
    return f"S{i:05d}"


def _holes(i: int) -> set[int]:
    if i % _PLANT_EVERY != _PLANT_EVERY - 1:
        return set()
    return set(_HOLES[(i // _PLANT_EVERY) % len(_HOLES)])


def _planted_gaps(symbols: int) -> list[tuple[str, datetime, int]]:
    """(symbol, start, missing bars) of every planted gap, in (symbol, start) order."""
    out = []
    for i in range(symbols):
        run: list[int] = []
        for m in [*sorted(_holes(i)), None]:
            if run and (m is None or m != run[-1] + 1):
                out.append((_symbol(i), SESSION_OPEN + timedelta(minutes=run[0]), len(run)))
                run = []
            if m is not None:
                run.append(m)
    return out


def _bars(first: int, last: int) -> list[Bar]:
    out = []
    for i in range(first, last):
        sym, skip = _symbol(i), _holes(i)
        if i == 1:
            skip = skip | {_CONFIRMED_EMPTY_MINUTE}
        base = 10.0 + i % 500
        for m in range(390):
            if m in skip:
                continue
            p = base + (m % 7) * 0.01
            out.append(
                Bar(
                    sym,
                    Interval.M1,
                    SESSION_OPEN + timedelta(minutes=m),
                    p,
                    p + 0.02,
                    p - 0.02,
                    p,
                    100.0,
                    "bench",
                )
            )
    return out


async def _run(symbols: int) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="mds-bench-gaps-"))
    store = SqliteStore(workdir / "bench.db")
    await store.open()
    try:
        stored = 0
        for first in range(0, symbols, _BATCH_SYMBOLS):
            batch = _bars(first, min(first + _BATCH_SYMBOLS, symbols))
            stored += (await store.write_bars(batch, as_of=NOW)).inserted
        if symbols > 1:
            epoch = int((SESSION_OPEN + timedelta(minutes=_CONFIRMED_EMPTY_MINUTE)).timestamp())
            confirmed = await store.record_empty_evidence(
                _symbol(1), Interval.M1, [epoch], "bench", now=NOW, needed_answers=1, needed_providers=1
            )
            assert confirmed == [epoch]
        calendar = get_calendar("XNYS")
        calendar.expected_epochs(Interval.M1, SESSION_OPEN, SESSION_CLOSE)  # build outside the timing
        names = [_symbol(i) for i in range(symbols)]
        t = time.perf_counter()
        gaps = await scan_gaps(
            store,
            calendar,
            symbols=names,
            interval=Interval.M1,
            start=SESSION_OPEN,
            end=SESSION_CLOSE,
            now=NOW,
        )
        seconds = time.perf_counter() - t
    finally:
        await store.close()
        shutil.rmtree(workdir, ignore_errors=True)
    found = [(g.symbol, g.start, g.missing_bars) for g in gaps]
    assert found == _planted_gaps(symbols), "the scan must find exactly the planted gaps"
    return {
        "benchmark": "gaps",
        "symbols": symbols,
        "bars": stored,
        "seconds": round(seconds, 3),
        "gaps_found": len(gaps),
        **{k: v for k, v in summarize(gaps).items() if k != "gaps"},
    }


def run(symbols: int = 8000) -> dict[str, object]:
    """Build the store, time one full scan, check it found exactly the planted gaps."""
    return asyncio.run(_run(symbols))
