"""Universe import: a 12,000-row NASDAQ Trader directory parsed and loaded into SQLite.

Target (issue 14): under 2 s for the whole import (parse both files, rank, write, record
the version). Timed twice: into an empty store, then again with 2% of the symbols gone and
as many new ones (the weekly case: the diff, the tier changes, the inactive marks). The
second store holds 20 daily bars for the first 3,000 symbols, so the ranking measure is
computed too.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Bar, Interval
from mds.reference.nasdaqtrader import read_directory_files
from mds.services.universe import import_directory
from mds.storage.sqlite import SqliteStore

NOW = datetime(2025, 10, 8, 21, 0, tzinfo=UTC)
_NASDAQ_HEADER = (
    "Symbol|Security Name|Market Category|Test Issue|Financial Status|Round Lot Size|ETF|NextShares"
)
_OTHER_HEADER = "ACT Symbol|Security Name|Exchange|CQS Symbol|ETF|Round Lot Size|Test Issue|NASDAQ Symbol"
_TRAILER = "File Creation Time: 1008202521:32|||||||"


def _ticker(i: int) -> str:
    letters = ""
    n = i
    for _ in range(4):
        letters += chr(ord("A") + n % 26)
        n //= 26
    return letters


def write_directory(folder: Path, rows: int, *, skip_every: int = 0, extra: int = 0) -> list[Path]:
    """nasdaqlisted.txt and otherlisted.txt with ``rows`` symbols between them (half each),
    plus a test issue each, and the trailer. ``skip_every``: leave out every n-th symbol;
    ``extra``: that many symbols no earlier file had."""
    indexes = [i for i in range(rows) if not skip_every or i % skip_every] + list(range(rows, rows + extra))
    nasdaq, other = [_NASDAQ_HEADER], [_OTHER_HEADER]
    for k, i in enumerate(indexes):
        t = _ticker(i)
        etf = "Y" if i % 9 == 0 else "N"
        if k % 2:
            nasdaq.append(f"{t}|{t} Holdings Inc. - Common Stock|Q|N|N|100|{etf}|N")
        else:
            cls = f"{t}.A" if i % 50 == 0 else t
            other.append(f"{cls}|{t} Corp. Common Stock|N|{cls}|{etf}|100|N|{cls}")
    nasdaq += ["ZZZT|NASDAQ TEST STOCK|G|Y|N|100|N|N", _TRAILER]
    other += ["ZZZO|NYSE TEST STOCK|N|ZZZO|N|100|Y|ZZZO", _TRAILER]
    paths = [folder / "nasdaqlisted.txt", folder / "otherlisted.txt"]
    for path, lines in zip(paths, (nasdaq, other), strict=True):
        path.write_text("\n".join(lines) + "\n")
    return paths


async def _run(rows: int, folder: Path) -> dict[str, object]:
    settings = load_settings({})
    clock = ManualClock(NOW)
    (folder / "a").mkdir()
    (folder / "b").mkdir()
    first = write_directory(folder / "a", rows)
    second = write_directory(folder / "b", rows, skip_every=50, extra=rows // 50)

    store = SqliteStore(str(folder / "u.db"))
    await store.open()
    try:
        t0 = time.perf_counter()
        directory = read_directory_files(first)
        parsed_s = time.perf_counter() - t0
        report = await import_directory(store, directory, settings=settings, clock=clock)
        first_s = time.perf_counter() - t0

        # 20 sessions of daily bars for the first 3,000 symbols: the rank now has a measure.
        day = datetime(2025, 9, 10, 13, 30, tzinfo=UTC)
        bars = [
            Bar(
                d.symbol,
                Interval.D1,
                day + timedelta(days=k),
                10,
                10,
                10,
                10.0 + (j % 97),
                1000.0 * (j % 13 + 1),
                "sim",
            )
            for j, d in enumerate(directory.symbols[:3000])
            for k in range(20)
        ]
        await store.write_bars(bars, as_of=NOW)
        clock.advance(7 * 86400)

        t1 = time.perf_counter()
        again = await import_directory(store, read_directory_files(second), settings=settings, clock=clock)
        second_s = time.perf_counter() - t1
    finally:
        await store.close()
    return {
        "bench": "universe_import",
        "rows": report.symbols,
        "etfs": report.etfs,
        "parse_s": round(parsed_s, 3),
        "import_s": round(first_s, 3),
        "reimport_s": round(second_s, 3),
        "reimport_added": again.change.added,
        "reimport_removed": again.change.removed,
        "reimport_tier_changes": again.change.tier_changes,
        "ranked_by_measure": again.ranked_by_measure,
        "target_s": 2.0,
        "ok": first_s < 2.0 and second_s < 2.0,
    }


def run(rows: int = 12_000) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp(prefix="mds-bench-universe-"))
    try:
        return asyncio.run(_run(rows, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
