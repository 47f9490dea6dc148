"""Store contract, retention part: ``delete_bars_before`` removes exactly the bars of one
interval older than the cutoff, current and superseded revisions alike, with their "no
trades" evidence, and nothing else.

Every backend in ``conftest.BACKENDS`` must pass all of it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from mds.domain.models import Bar, Interval
from mds.storage.base import RetentionCount, Store

Fetch = Callable[[str], Awaitable[list[tuple[Any, ...]]]]

CUTOFF = datetime(2025, 3, 10, 14, 30, tzinfo=UTC)
LEARNED = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
REVISED = LEARNED + timedelta(hours=1)
M5 = Interval.M5


def bar(symbol: str, interval: Interval, ts: datetime, close: float = 100.0) -> Bar:
    return Bar(symbol, interval, ts, 100.0, 102.0, 98.0, close, 10.0, "sim")


def around_cutoff(symbol: str, interval: Interval, step: timedelta, *, close: float = 100.0) -> list[Bar]:
    """Three bars before the cutoff, one at it and two after it."""
    return [bar(symbol, interval, CUTOFF + k * step, close) for k in (-3, -2, -1, 0, 1, 2)]


async def keys(fetch: Fetch, table: str) -> set[tuple[str, str, int]]:
    """(symbol, interval, epoch seconds) of every row of a bar table, whatever the backend's ts type."""
    rows = await fetch(f"SELECT symbol, interval, ts FROM {table}")
    return {(s, iv, ts if isinstance(ts, int) else int(ts.timestamp())) for s, iv, ts in rows}


async def test_only_the_older_bars_of_that_interval_go_current_and_history(
    store: Store, fetch: Fetch
) -> None:
    five = timedelta(minutes=5)
    for symbol in ("AAA", "BBB"):
        await store.write_bars(around_cutoff(symbol, M5, five), as_of=LEARNED)
        # Revise every bar once: each gets one history row.
        await store.write_bars(around_cutoff(symbol, M5, five, close=101.0), as_of=REVISED)
    # Other intervals, old and new, revised too: untouched.
    others = [
        *around_cutoff("AAA", Interval.M1, timedelta(minutes=1)),
        *around_cutoff("AAA", Interval.D1, timedelta(days=1)),
        *around_cutoff("AAA", Interval.M15, timedelta(minutes=15)),
    ]
    await store.write_bars(others, as_of=LEARNED)
    await store.write_bars([b.with_(close=99.0) for b in others], as_of=REVISED)
    before = {t: await keys(fetch, t) for t in ("candles", "candle_history")}

    result = await store.delete_bars_before(M5, CUTOFF)

    assert result == RetentionCount(bars=6, history=6)  # 3 old bars x 2 symbols, one revision each
    for table in ("candles", "candle_history"):
        gone = before[table] - await keys(fetch, table)
        cut = int(CUTOFF.timestamp())
        assert gone == {k for k in before[table] if k[1] == "5m" and k[2] < cut}, table
    for symbol in ("AAA", "BBB"):
        kept = await store.read_bars(symbol, M5, CUTOFF - timedelta(days=1), CUTOFF + timedelta(days=1))
        assert [b.ts for b in kept] == [CUTOFF, CUTOFF + five, CUTOFF + 2 * five]
        assert all(b.close == 101.0 for b in kept)
        assert [r.close for r in await store.bar_revisions(symbol, M5, CUTOFF)] == [100.0, 101.0]
        assert await store.bar_revisions(symbol, M5, CUTOFF - five) == []
        # As of before the revision, the old bars are gone too (history rows included).
        as_before = await store.read_bars(
            symbol, M5, CUTOFF - timedelta(days=1), CUTOFF, as_of=LEARNED + timedelta(minutes=1)
        )
        assert as_before == []
    for interval, step in ((Interval.M1, timedelta(minutes=1)), (Interval.D1, timedelta(days=1))):
        kept = await store.read_bars("AAA", interval, CUTOFF - 5 * step, CUTOFF + 5 * step)
        assert len(kept) == 6 and all(b.close == 99.0 for b in kept)

    # A second pass finds nothing left to delete.
    assert await store.delete_bars_before(M5, CUTOFF) == RetentionCount(0, 0)


async def test_a_cutoff_between_seconds_keeps_the_bar_after_it(store: Store) -> None:
    await store.write_bars(
        [bar("AAA", M5, CUTOFF), bar("AAA", M5, CUTOFF + timedelta(minutes=5))], as_of=LEARNED
    )
    assert await store.delete_bars_before(M5, CUTOFF + timedelta(microseconds=1)) == RetentionCount(1, 0)
    kept = await store.read_bars("AAA", M5, CUTOFF, CUTOFF + timedelta(hours=1))
    assert [b.ts for b in kept] == [CUTOFF + timedelta(minutes=5)]


async def test_no_trades_evidence_older_than_the_cutoff_goes_with_the_bars(store: Store) -> None:
    cut = int(CUTOFF.timestamp())
    epochs = [cut - 600, cut - 300, cut, cut + 300]
    for interval in (M5, Interval.M1):
        for provider in ("sim", "sim_backup"):
            await store.record_empty_evidence(
                "ILLQ", interval, epochs, provider, now=LEARNED, needed_answers=2, needed_providers=2
            )
    window = (CUTOFF - timedelta(hours=1), CUTOFF + timedelta(hours=1))
    assert await store.confirmed_empty("ILLQ", M5, *window) == epochs

    await store.delete_bars_before(M5, CUTOFF)

    assert await store.confirmed_empty("ILLQ", M5, *window) == [cut, cut + 300]
    assert await store.confirmed_empty("ILLQ", Interval.M1, *window) == epochs
    # The evidence went too: one more answer lacking an old bar does not confirm it again.
    await store.record_empty_evidence(
        "ILLQ", M5, [cut - 600], "sim", now=REVISED, needed_answers=2, needed_providers=1
    )
    assert await store.confirmed_empty("ILLQ", M5, *window) == [cut, cut + 300]


async def test_symbols_beyond_one_delete_batch_all_go(store: Store) -> None:
    symbols = [f"S{i:03d}" for i in range(450)]
    old, new = CUTOFF - timedelta(minutes=5), CUTOFF
    await store.write_bars(
        [bar(s, M5, ts) for s in symbols for ts in (old, new)],
        as_of=LEARNED,
    )
    assert await store.delete_bars_before(M5, CUTOFF) == RetentionCount(len(symbols), 0)
    counts = await store.bar_counts_since(M5, symbols, old)
    assert counts == dict.fromkeys(symbols, 1)
